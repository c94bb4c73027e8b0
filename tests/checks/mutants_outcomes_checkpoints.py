"""Mutants of the reference for the outcome checks (5.1, 5.2, 7.x) and the checkpoint checks
(6.1, 6.2, checkpoint-safety): bugs a student could write in history or save/load."""

from __future__ import annotations

from variants import Mutant


def _ids(*ids: str) -> frozenset[str]:
    return frozenset(ids)


MUTANTS: list[Mutant] = [
    Mutant(
        name="checkpoint_without_optimizer_buffers",
        patches=((
            '                    arrays[f"optimizer/{i}/{name}"] = value',
            "                    pass",
        ),),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"Adam's moments \(exp_avg, exp_avg_sq\) are not in the checkpoint"
                r"|momentum buffers are not in the checkpoint",
    ),
    Mutant(
        name="checkpoint_without_step_counts",
        patches=(
            ('"step_count": optimizer_state["step_count"],', '"step_count": 0,'),
            ('"param_steps": [s.get("step") for s in optimizer_state["state"]],',
             '"param_steps": [None for s in optimizer_state["state"]],'),
        ),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"step count \(state\['step'\].*bias correction|optimizer\.step_count was "
                r"not restored",
    ),
    Mutant(  # the updates read each parameter's state['step']: training resumes bit for bit
        name="checkpoint_without_optimizer_step_count",
        patches=(('"step_count": optimizer_state["step_count"],', '"step_count": 0,'),),
        caught_by=_ids("6.2"),
        named_by=_ids("6.2"),
        message=r"optimizer\.step_count was not restored.*may still resume",
    ),
    Mutant(
        name="epoch_not_restored",
        patches=(("            self.epoch, self.step = epoch, step",
                  "            self.step = step"),),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"epoch was not restored: epoch after loading is 0",
    ),
    Mutant(
        name="history_not_restored",
        patches=(("            self.history = copy.deepcopy(history)",
                  "            pass"),),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"history was not restored",
    ),
    Mutant(
        name="scheduler_not_restored",
        patches=(("            self.scheduler = scheduler\n            self.grad_clip_norm",
                  "            self.grad_clip_norm"),),
        caught_by=_ids("6.2"),
        named_by=_ids("6.2"),
        message=r"saved schedule was not restored",
    ),
    Mutant(
        name="clip_norm_not_restored",
        patches=(("            self.grad_clip_norm = None if clip is None else float(clip)",
                  "            pass"),),
        caught_by=_ids("6.2"),
        named_by=_ids("6.2"),
        message=r"grad_clip_norm was not restored: the resumed trainer clips at",
    ),
    Mutant(
        name="optimizer_settings_not_restored",
        patches=(('"hyperparameters": saved["hyperparameters"],',
                  '"hyperparameters": self.optimizer.hyperparameters(),'),),
        caught_by=_ids("6.2"),
        named_by=_ids("6.2"),
        message=r"saved optimizer hyper-parameters did not win",
    ),
    Mutant(
        name="data_seed_not_restored",
        patches=(("self._data_seed = self._restored_data_seed = data_seed",
                  "self._data_seed = data_seed"),),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"data order was not restored",
    ),
    Mutant(
        name="parameters_not_loaded",
        patches=(("                p.data[...] = value  # in place: the optimizer holds these",
                  "                pass  # "),),
        caught_by=_ids("6.1", "6.2"),
        named_by=_ids("6.1", "6.2"),
        message=r"parameters were not restored",
    ),
    Mutant(
        name="load_copies_before_validating",
        patches=(("            values.append(value)\n",
                  "            values.append(value)\n            p.data[...] = value\n"),),
        caught_by=_ids("checkpoint-safety"),
        named_by=_ids("checkpoint-safety"),
        message=r"copied the first layer before noticing the shapes differ",
    ),
    Mutant(
        name="pickle_checkpoint",
        patches=(
            ("        return write_checkpoint(path, arrays, meta)",
             "        import pickle\n"
             "        path = Path(path)\n"
             "        path.parent.mkdir(parents=True, exist_ok=True)\n"
             "        with open(path, 'wb') as f:\n"
             "            pickle.dump((arrays, meta), f)\n"
             "        return path"),
            ("        arrays, meta = read_checkpoint(path)",
             "        import pickle\n"
             "        try:\n"
             "            with open(path, 'rb') as f:\n"
             "                arrays, meta = pickle.load(f)\n"
             "        except Exception as error:\n"
             "            raise CheckpointError(str(error)) from error"),
        ),
        caught_by=_ids("checkpoint-safety"),
        named_by=_ids("checkpoint-safety"),
        message=r"the file is a pickle: loading it can run arbitrary code",
    ),
    Mutant(
        # saves plain arrays, but a file it cannot read as one is unpickled: known only by the
        # decoy's tripwire, which the student's code can empty, so the trusted grade leaves it
        # to the kernel's feedback (checks/checkpoints.py, "loading must not unpickle")
        name="load_falls_back_to_pickle",
        patches=(
            ("        arrays, meta = read_checkpoint(path)",
             "        try:\n"
             "            arrays, meta = read_checkpoint(path)\n"
             "        except CheckpointError:\n"
             "            import pickle\n"
             "            try:\n"
             "                with open(path, 'rb') as f:\n"
             "                    arrays, meta = pickle.load(f)\n"
             "            except Exception:\n"
             "                raise CheckpointError(f'{path} is not a checkpoint') from None"),
        ),
        caught_by=_ids("checkpoint-safety"),
        named_by=_ids("checkpoint-safety"),
        message=r"the pickle ran code while loading",
        ungraded=_ids("checkpoint-safety"),
    ),
    Mutant(
        name="save_not_atomic",
        patches=((
            "        return write_checkpoint(path, arrays, meta)",
            "        path = Path(path)\n"
            "        staged = path.with_name(path.name + '.staged')\n"
            "        staged = write_checkpoint(staged, arrays, meta)\n"
            "        path.write_bytes(staged.read_bytes())  # rewrites the old file in place\n"
            "        staged.unlink()\n"
            "        return path",
        ),),
        caught_by=_ids("checkpoint-safety"),
        named_by=_ids("checkpoint-safety"),
        message=r"not atomic",
    ),
    Mutant(
        name="train_loss_not_appended",
        patches=(('        self.history["train_loss"].append(mean_loss)\n', ""),),
        caught_by=_ids("1.1", "5.2"),
        named_by=_ids("5.2"),
        message=r"history\['train_loss'\] is never appended",
    ),
    Mutant(
        name="learning_rates_not_recorded",
        patches=(('        self.history["learning_rates"].append(lr)\n', ""),),
        caught_by=_ids("3.1", "3.2", "5.2"),
        named_by=_ids("5.2"),
        message=r"learning_rates is not recorded",
    ),
    Mutant(
        name="eval_loss_appended_twice",
        patches=(('        self.history["eval_loss"].append(loss)\n',
                  '        self.history["eval_loss"].append(loss)\n'
                  '        self.history["eval_loss"].append(loss)\n'),),
        caught_by=_ids("2.2", "5.2"),
        named_by=_ids("5.2"),
        message=r"eval_loss.*appended more than once per evaluate call",
    ),
    Mutant(
        name="optimizer_never_steps",
        patches=(("        self.optimizer.step()\n", ""),),
        caught_by=_ids("1.1", "1.2", "1.3", "3.1", "3.2", "4.1", "4.2", "5.1", "7.1", "7.2",
                       "7.3", "accumulation-args", "nan-loss", "5.2"),
        named_by=_ids("5.1", "7.1", "7.2", "7.3"),
        message=r"never calls optimizer.step\(\)",
    ),
    Mutant(
        name="trainer_step_not_counted",
        patches=(("        self.step += 1\n", ""),),
        caught_by=_ids("1.1", "1.3", "7.3"),
        named_by=_ids("7.3"),
        message=r"increment trainer.step once per optimizer.step\(\)",
    ),
]

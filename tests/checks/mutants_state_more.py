"""More mutants of train/eval modes and evaluate (checks 2.1, 2.2), of checkpoints (6.1, 6.2,
checkpoint-safety) and of ``training_memory`` (memory): classic slips whose likely bug no
mutant of the other files reaches."""

from __future__ import annotations

from variants import Mutant, mutant

_m = mutant


ACCURACY = "        accuracy = correct / judged if judged else None\n"
EVAL_LOOP = (
    "            for inputs, targets in dataloader:\n"
    "                inputs, targets = _tensor(inputs), _tensor(targets)\n"
    "                outputs = self.model.forward(inputs)\n"
)
EVAL_START = (
    "        self._set_mode(False)\n"
    "        loss_sum, samples, correct, judged = 0.0, 0, 0, 0\n"
)
RESTORE_COUNTERS = "            self.epoch, self.step = epoch, step\n"
SAVE = "        return write_checkpoint(path, arrays, meta)\n"
LOAD = "        arrays, meta = read_checkpoint(path)\n"
NPZ = (
    "        path = Path(path)\n"
    "        path = path if path.suffix else path.with_suffix(\".npz\")\n"
)
RELU = "            activations += 5 * batch_size * width\n"
DROPOUT = (
    "        elif isinstance(layer, nn.Dropout) and layer.p > 0:\n"
    "            activations += 8 * batch_size * width\n"
)
LINEAR = (
    "            width = layer.out_features\n"
    "            activations += 4 * batch_size * width\n"
)
PARAMETERS = "    parameters = sum(p.data.nbytes for p in model.parameters())\n"
TOTAL = '    memory["total"] = sum(memory.values())\n    return memory\n'
M = {"memory"}

MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ evaluate
    _m("evaluate_accuracy_percentage",
       [(ACCURACY, "        accuracy = 100 * correct / judged if judged else None\n")],
       {"2.2"}, {"2.2"}, r"accuracy must be a fraction in \[0, 1\], not a percentage"),
    _m("evaluate_accuracy_max_not_argmax",
       [("        return int(np.sum(outputs.argmax(axis=1) == labels)), len(labels)\n",
         "        return int(np.sum(outputs.max(axis=1) == labels)), len(labels)\n")],
       {"2.2"}, {"2.2"}, r"accuracy is the fraction of samples whose argmax over the logits"),
    _m("evaluate_clears_gradients",
       [(EVAL_START, "        self._clear_grads()\n" + EVAL_START)],
       {"2.2"}, {"2.2"}, r"evaluate touched the gradients"),
    _m("evaluate_steps_optimizer",
       [(EVAL_START, "        self.optimizer.step()  # apply what is pending, then judge\n"
                     + EVAL_START)],
       {"2.2", "5.2"}, {"2.2"},
       r"evaluate updated the weights.*evaluate must not touch the optimizer"),
    _m("evaluate_reads_batches_twice",
       [(EVAL_LOOP,
         "            outputs_all = [self.model.forward(_tensor(x)) for x, _ in dataloader]\n"
         "            for outputs, (_, targets) in zip(outputs_all, dataloader):\n"
         "                targets = _tensor(targets)\n")],
       {"2.2"}, {"2.2"}, r"evaluate must work with any iterable of batches, a generator too"),
    _m("evaluate_returns_last_batch_loss",
       [("        loss = loss_sum / samples\n",
         "        loss = _scalar(self.loss_fn(outputs, targets))  # the loop's last batch\n")],
       {"2.2"}, {"2.2"}, r"the loss is not the mean over every sample"),
    _m("mode_set_on_dropouts_only",
       [("        set_training(self.model, training)\n",
         "        for layer in modules(self.model):  # only Dropout behaves differently\n"
         "            if isinstance(layer, nn.Dropout):\n"
         "                layer.training = training\n")],
       {"2.1"}, {"2.1"}, r"only some flags were switched"),
    _m("evaluate_returns_loss_only",
       [("        return loss, accuracy\n        ### END SOLUTION\n\n    # -----",
         "        return loss\n        ### END SOLUTION\n\n    # -----")],
       {"2.2", "5.2"}, {"2.2"}, r"evaluate must return a \(loss, accuracy\) tuple"),
    # ------------------------------------------------------------------ checkpoints
    _m("checkpoint_step_not_restored",
       [(RESTORE_COUNTERS, "            self.epoch = epoch\n")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"trainer\.step was not saved or not restored"),
    _m("checkpoint_scheduler_restored_as_dict",
       [("            self.scheduler = scheduler\n",
         "            self.scheduler = meta[\"scheduler\"]\n")],
       {"6.1", "6.2"}, {"6.1", "6.2"}, r"training crashed after load_checkpoint"),
    _m("checkpoint_optimizer_state_in_json",
       [('            "optimizer": {\n                "kind": optimizer_state["kind"],\n',
         '            "optimizer_state": optimizer_state,\n'
         '            "optimizer": {\n                "kind": optimizer_state["kind"],\n')],
       {"6.1", "6.2", "checkpoint-safety"}, {"6.1", "6.2", "checkpoint-safety"},
       r"save_checkpoint crashes"),
    _m("checkpoint_array_names_disagree",
       [('        arrays = {f"model/{i}": p.data for i, p in enumerate(params)}\n',
         '        arrays = {f"param_{i}": p.data for i, p in enumerate(params)}\n')],
       {"6.1", "6.2", "checkpoint-safety"}, {"6.1", "6.2", "checkpoint-safety"},
       r"save_checkpoint and load_checkpoint do not agree"),
    _m("checkpoint_path_gets_npz_suffix",
       [(SAVE, NPZ + SAVE), (LOAD, NPZ + LOAD)],
       {"checkpoint-safety"}, {"checkpoint-safety"},
       r"save_checkpoint must write exactly the path given"),
    _m("checkpoint_load_swallows_errors",
       [(LOAD, "        try:\n"
               "            arrays, meta = read_checkpoint(path)\n"
               "            restore = self._plan_restore(arrays, meta)\n"
               "        except Exception as error:\n"
               "            print(f\"could not load {path}: {error}\")\n"
               "            return\n")],
       {"checkpoint-safety"}, {"checkpoint-safety"},
       r"load_checkpoint must check the file .*and refuse it"),
    _m("checkpoint_counters_set_before_validating",
       [(LOAD, LOAD + "        self.epoch, self.step = meta[\"epoch\"], meta[\"step\"]\n")],
       {"checkpoint-safety"}, {"checkpoint-safety"},
       r"a failed load left the trainer half restored"),
    _m("checkpoint_weights_copied_while_reading",
       [(LOAD, "        with open(path, \"rb\") as f, np.load(f, allow_pickle=False) as npz:\n"
               "            for i, p in enumerate(self.model.parameters()):\n"
               "                p.data[...] = npz[f\"model/{i}\"]\n" + LOAD)],
       {"checkpoint-safety"}, {"checkpoint-safety"}, r"a failed load changed the trainer"),
    # ------------------------------------------------------------------ training_memory
    _m("memory_relu_mask_as_float",
       [(RELU, "            activations += 8 * batch_size * width\n")],
       M, M, r"ReLU's mask counted as 4 bytes per number"),
    _m("memory_input_batch_counted",
       [(LINEAR, "            if width == 0:  # the input batch\n"
                 "                activations += 4 * batch_size * layer.in_features\n" + LINEAR)],
       M, M, r"the input batch is not counted"),
    _m("memory_only_linear_layers",
       [("        elif isinstance(layer, act.ReLU):\n" + RELU, ""),
        ("        elif isinstance(layer, act.Sigmoid | act.Tanh | act.Softmax):\n"
         "            activations += 4 * batch_size * width\n", ""),
        (DROPOUT, "")],
       M, M, r"only the Linear layers were counted"),
    _m("memory_linear_outputs_forgotten",
       [(LINEAR, "            width = layer.out_features\n")],
       M, M, r"the Linear layers' outputs are missing"),
    _m("memory_getsizeof_parameters",
       [(PARAMETERS, "    import sys\n"
                     "    parameters = sum(sys.getsizeof(p.data) for p in model.parameters())\n")],
       M, M, r"sum p\.data\.nbytes over every p in model\.parameters\(\)"),
    _m("memory_in_megabytes",
       [(TOTAL, '    memory["total"] = sum(memory.values())\n'
                "    return {k: v / 2**20 for k, v in memory.items()}  # in MB\n")],
       M, M, r"bytes are whole numbers"),
    _m("memory_total_forgotten",
       [(TOTAL, "    return memory\n")], M, M, r"missing total: return every component"),
    _m("memory_returns_tuple",
       [(TOTAL, '    memory["total"] = sum(memory.values())\n'
                '    return tuple(memory.values())\n')],
       M, M, r"return the dict of the five components, in bytes"),
]

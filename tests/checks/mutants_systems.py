"""Mutants of ``training_memory`` (check ``memory``): the ways a student miscounts what a
training step keeps in memory."""

from __future__ import annotations

from variants import Mutant

PARAMETERS = "    parameters = sum(p.data.nbytes for p in model.parameters())\n"
SGD_BUFFERS = "        buffers = 1 if optimizer.momentum > 0 else 0\n"
STATE = "    optimizer_state = buffers * sum(p.data.nbytes for p in optimizer.params)\n"
MEMORY = '    memory = {"parameters": parameters, "gradients": parameters,\n'
MEMORY_ONLY = frozenset({"memory"})


def _m(name: str, patches: list[tuple[str, str]], message: str) -> Mutant:
    return Mutant(name, tuple(patches), MEMORY_ONLY, MEMORY_ONLY, message)


MUTANTS: list[Mutant] = [
    _m("memory_counts_numbers_not_bytes",
       [(PARAMETERS, "    parameters = sum(p.data.size for p in model.parameters())\n")],
       r"parameters of .*counted numbers, not bytes"),
    _m("memory_float64_parameters",
       [(PARAMETERS, "    parameters = sum(8 * p.data.size for p in model.parameters())\n")],
       r"8 bytes per number: tinytorch keeps float32"),
    _m("memory_biases_missing",
       [(PARAMETERS, "    parameters = sum(p.data.nbytes for p in model.parameters()\n"
                     "                     if p.data.ndim == 2)\n")],
       r"the biases are missing"),
    _m("memory_gradients_forgotten",
       [(MEMORY, '    memory = {"parameters": parameters, "gradients": 0,\n')],
       r"gradients of .*gradient of its own shape and dtype"),
    _m("memory_plain_sgd_keeps_a_buffer",
       [(SGD_BUFFERS, "        buffers = 1\n")],
       r"optimizer_state is 1x the parameters for SGD without momentum: plain SGD keeps no "
       r"buffer"),
    _m("memory_sgd_counted_like_adam",
       [(SGD_BUFFERS, "        buffers = 2\n")],
       r"optimizer_state is 2x the parameters for SGD without momentum: plain SGD keeps no "
       r"buffer"),
    _m("memory_adam_one_buffer",
       [("        buffers = 2\n", "        buffers = 1\n")],
       r"optimizer_state is 1x the parameters for Adam(W)?: Adam(W)? keeps two buffers per "
       r"parameter \(exp_avg and exp_avg_sq\)"),
    _m("memory_state_read_before_first_step",
       [(STATE, "    optimizer_state = sum(v.nbytes for s in optimizer.state for v in s.values()\n"
                "                          if isinstance(v, np.ndarray)) + 0 * buffers\n")],
       r"optimizer\.state is empty until the first step"),
    _m("memory_relu_mask_missing",
       [("            activations += 5 * batch_size * width\n",
         "            activations += 4 * batch_size * width\n")],
       r"ReLU's mask is missing"),
    _m("memory_dropout_mask_missing",
       [("            activations += 8 * batch_size * width\n",
         "            activations += 4 * batch_size * width\n")],
       r"Dropout's mask is missing"),
    _m("memory_dropout_p0_counted",
       [("        elif isinstance(layer, nn.Dropout) and layer.p > 0:\n",
         "        elif isinstance(layer, nn.Dropout):\n")],
       r"a Dropout with p = 0 returns its input unchanged: it keeps nothing"),
    _m("memory_batch_size_ignored",
       [(MEMORY, "    activations //= batch_size\n" + MEMORY)],
       r"batch_size is missing: every kept array has one row per sample"),
    _m("memory_only_top_level_layers",
       [("    for layer in modules(model):\n",
         '    for layer in getattr(model, "layers", []):\n')],
       r"activations of .*in the order modules\(model\) yields them"),
    _m("memory_total_without_gradients",
       [('    memory["total"] = sum(memory.values())\n',
         '    memory["total"] = sum(memory.values()) - parameters\n')],
       r"total must be parameters \+ gradients \+ optimizer_state \+ activations"),
]

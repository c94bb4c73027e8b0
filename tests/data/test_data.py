"""tinytorch.data: TensorDataset and a DataLoader whose order is a pure function of
(seed, epoch), so shuffling is reproducible and survives checkpoint/resume."""

from __future__ import annotations

import numpy as np
import pytest

from tinytorch.core.tensor import Tensor
from tinytorch.data import DataLoader, TensorDataset


def _data(n: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """x row i is [i, 10 i], y[i] = i: every sample says which index it came from."""
    idx = np.arange(n, dtype=np.float32)
    return np.stack([idx, 10 * idx], axis=1), idx.copy()


def _epoch_indices(loader: DataLoader) -> list[int]:
    """Iterate one epoch and return the sample indices in the order they came."""
    seen = []
    for xb, yb in loader:
        np.testing.assert_array_equal(np.asarray(xb)[:, 1], 10 * np.asarray(yb))
        seen.extend(int(v) for v in np.asarray(yb))
    return seen


# ----------------------------------------------------------------------------- TensorDataset
def test_tensor_dataset_indexing_and_length() -> None:
    """``dataset[i] == (x[i], y[i])`` and ``len`` is the number of rows."""
    x, y = _data(6)
    ds = TensorDataset(x, y)
    assert len(ds) == 6
    xi, yi = ds[4]
    np.testing.assert_array_equal(xi, x[4])
    assert float(yi) == 4.0


def test_tensor_dataset_length_mismatch_raises() -> None:
    """Arrays of different lengths raise ValueError: catches a dataset that silently truncates
    (or misaligns) inputs and targets."""
    x, y = _data(6)
    with pytest.raises(ValueError):
        TensorDataset(x, y[:5])


# ----------------------------------------------------------------------------- batching
@pytest.mark.parametrize(
    ("n", "batch_size", "drop_last", "sizes"),
    [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (8, 4, False, [4, 4]),
     (8, 4, True, [4, 4]), (3, 5, False, [3]), (3, 5, True, []), (10, 1, False, [1] * 10)],
)  # fmt: skip
def test_batch_sizes_and_len(n, batch_size, drop_last, sizes) -> None:
    """Batches have ``batch_size`` rows except a partial last one, which drop_last removes, and
    ``len(loader)`` is the number of batches: catches a lost last batch (samples never trained
    on) and a len() that disagrees with iteration (wrong progress and accumulation windows)."""
    loader = DataLoader(TensorDataset(*_data(n)), batch_size=batch_size, drop_last=drop_last)
    got = [len(np.asarray(yb)) for _, yb in loader]
    assert got == sizes
    assert len(loader) == len(sizes)


def test_batches_are_float32_tensors() -> None:
    """Each batch is a tuple of float32 Tensors, one per dataset array, ready for a model."""
    loader = DataLoader(TensorDataset(*_data(5)), batch_size=2)
    xb, yb = next(iter(loader))
    assert isinstance(xb, Tensor) and isinstance(yb, Tensor)
    assert xb.dtype == np.float32 and xb.shape == (2, 2) and yb.shape == (2,)


def test_no_shuffle_is_identity_order() -> None:
    """Without shuffle samples come in dataset order, every epoch: catches an unrequested
    shuffle (evaluation results that change from run to run)."""
    loader = DataLoader(TensorDataset(*_data(10)), batch_size=3, shuffle=False)
    assert _epoch_indices(loader) == list(range(10))
    assert _epoch_indices(loader) == list(range(10))


def test_shuffle_is_a_permutation_keeping_pairs_together() -> None:
    """A shuffled epoch visits every sample exactly once and keeps x[i] with y[i]: catches
    sampling with replacement and inputs shuffled separately from targets."""
    loader = DataLoader(TensorDataset(*_data(23)), batch_size=5, shuffle=True, seed=1)
    order = _epoch_indices(loader)  # the helper checks the x/y pairing of every batch
    assert sorted(order) == list(range(23))
    assert order != list(range(23))


def test_shuffle_reproducible_for_same_seed() -> None:
    """Two loaders with the same seed give the same orders epoch after epoch; another seed
    gives other orders: catches shuffling from the global or an unseeded RNG."""
    ds = TensorDataset(*_data(30))
    a = DataLoader(ds, batch_size=4, shuffle=True, seed=7)
    b = DataLoader(ds, batch_size=4, shuffle=True, seed=7)
    c = DataLoader(ds, batch_size=4, shuffle=True, seed=8)
    for _ in range(3):
        order_a = _epoch_indices(a)
        assert _epoch_indices(b) == order_a
        assert _epoch_indices(c) != order_a


def test_shuffle_differs_across_epochs() -> None:
    """Successive epochs see different orders: catches a loader that reshuffles identically
    every epoch (the same batches forever)."""
    loader = DataLoader(TensorDataset(*_data(30)), batch_size=4, shuffle=True, seed=3)
    orders = [tuple(_epoch_indices(loader)) for _ in range(3)]
    assert len(set(orders)) == 3


def test_order_is_a_pure_function_of_seed_and_epoch() -> None:
    """``order(epoch)`` depends on (seed, epoch) only: the same twice, unaffected by iterating,
    by other loaders or by the global numpy RNG, and equal to what iterating that epoch yields:
    catches orders drawn from a stateful generator, which a resumed run cannot replay."""
    ds = TensorDataset(*_data(20))
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=11)
    first = [loader.order(e).tolist() for e in range(4)]
    np.random.seed(0)
    _epoch_indices(DataLoader(ds, batch_size=6, shuffle=True, seed=11))
    _epoch_indices(loader)
    np.random.seed(99)
    assert [loader.order(e).tolist() for e in range(4)] == first
    assert DataLoader(ds, batch_size=2, shuffle=True, seed=11).order(2).tolist() == first[2]
    state = np.random.get_state()[1].copy()
    loader.order(5)
    np.testing.assert_array_equal(np.random.get_state()[1], state)

    fresh = DataLoader(ds, batch_size=6, shuffle=True, seed=11)
    assert [_epoch_indices(fresh) for _ in range(4)] == first


def test_set_epoch_selects_the_order() -> None:
    """``set_epoch(e)`` makes the next iteration use epoch e's order: catches a set_epoch that is
    ignored (a resumed run would replay epoch 0's order)."""
    ds = TensorDataset(*_data(20))
    loader = DataLoader(ds, batch_size=6, shuffle=True, seed=5)
    loader.set_epoch(3)
    assert _epoch_indices(loader) == loader.order(3).tolist()
    reference = DataLoader(ds, batch_size=6, shuffle=True, seed=5)
    orders = [_epoch_indices(reference) for _ in range(4)]
    loader.set_epoch(2)
    assert _epoch_indices(loader) == orders[2]
    assert _epoch_indices(loader) == orders[3]


def test_state_dict_replays_the_order() -> None:
    """A loader restored from another's state_dict (even one built with another seed) continues
    with exactly the orders the original would have produced: catches shuffling state that is
    lost on checkpoint/resume."""
    ds = TensorDataset(*_data(25))
    original = DataLoader(ds, batch_size=4, shuffle=True, seed=21)
    for _ in range(2):
        _epoch_indices(original)
    state = original.state_dict()
    expected = [_epoch_indices(original) for _ in range(3)]

    resumed = DataLoader(ds, batch_size=4, shuffle=True, seed=999)
    resumed.load_state_dict(state)
    assert [_epoch_indices(resumed) for _ in range(3)] == expected


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, None, "4", True])
def test_bad_batch_size_raises_naming_it(batch_size) -> None:
    """A batch size that is not a positive integer raises ValueError naming ``batch_size``:
    catches an empty or infinite loop later on."""
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(TensorDataset(*_data(5)), batch_size=batch_size)


class _Squares:
    """A generic dataset: no arrays, just ``__len__`` and ``__getitem__`` returning tuples."""

    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> tuple[np.ndarray, float]:
        return np.array([i, i * i], dtype=np.float64), float(i % 2)


def test_generic_dataset_with_tuple_items() -> None:
    """Any object with ``__len__`` and ``__getitem__`` returning tuples is batched by stacking
    the tuple fields: catches a loader that only understands TensorDataset."""
    loader = DataLoader(_Squares(), batch_size=3, shuffle=True, seed=4)
    order = loader.order(0).tolist()
    batches = list(loader)
    assert [len(np.asarray(xb)) for xb, _ in batches] == [3, 3, 1]
    xs = np.concatenate([np.asarray(xb) for xb, _ in batches])
    ys = np.concatenate([np.asarray(yb) for _, yb in batches])
    np.testing.assert_array_equal(xs[:, 0], order)
    np.testing.assert_array_equal(xs[:, 1], np.square(order))
    np.testing.assert_array_equal(ys, np.array(order) % 2)

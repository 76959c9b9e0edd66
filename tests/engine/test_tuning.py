"""Integer and categorical PPO settings tuned per member, traced: equal to the untuned update
with the member's value, only for that member, and without compiling anything new."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from metapbt import Categorical, ConfigError, Float, Int, SearchSpace
from metapbt.engine import tuning
from metapbt.engine.ppo import _standardised
from metapbt.engine.trainer import PopulationTrainer
from tests.engine.helpers import same_member, tiny

# The adaptive KL coefficient follows the last pass's KL: checked too. Batch 128.
TINY = tiny(kl_coeff=0.2)
BASE = {"lr": 3e-3, "lambda": 0.95, "clip": 0.2}
KEY = jax.random.PRNGKey(3)


def space(**extra):
    return SearchSpace({"lr": Float(1e-4, 1e-2, log=True), **extra})


def trained(config, configs):
    """The state after two batches of a fresh trainer (same keys every call)."""
    trainer = PopulationTrainer("cart_pole", "earth", config, len(configs))
    state = trainer.init(KEY, configs)
    return trainer.train(state, 2 * config.batch_size)


def member_close(a, b, member):
    """Weights, optimiser state and KL coefficient of ``member`` agree."""
    for part in ("params", "opt_state", "kl_coeff"):
        leaves = zip(
            jax.tree.leaves(getattr(a, part)), jax.tree.leaves(getattr(b, part)), strict=True
        )
        for x, y in leaves:
            np.testing.assert_allclose(
                np.asarray(x[member]), np.asarray(y[member]), atol=5e-6, err_msg=part
            )


def test_for_space_sets_the_structural_bounds():
    config = tuning.for_space(TINY, space(epochs=Int(1, 6), minibatches=Categorical((1, 2, 4))))
    assert (config.max_epochs, config.minibatch_chunks) == (6, 4)
    assert tuning.for_space(TINY, space()) is TINY
    with pytest.raises(ConfigError, match="needs 'lr'"):
        tuning.for_space(TINY, SearchSpace({"epochs": Int(1, 4)}))
    assert tuning.for_space(TINY, space(minibatches=Int(1, 2))).minibatch_chunks == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"momentum": Float(0.1, 0.9)}, "cannot tune"),
        ({"minibatches": Categorical((3, 4))}, "least common multiple 12"),
        ({"epochs": Float(1.0, 4.0)}, "Int or a Categorical of positive ints"),
        ({"epochs": Categorical((0, 2))}, "positive ints"),
        ({"adv_norm": Categorical((0, 1))}, "Categorical\\(\\[True, False\\]\\)"),
        ({"gamma": Categorical(("low", "high"))}, "numbers and booleans"),
        ({"gamma": Float(0.9, 1.5)}, "\\(0, 1\\]"),
        ({"clip": Categorical((True, False))}, "takes numbers"),
    ],
)
def test_for_space_refuses_what_the_engine_cannot_take(extra, message):
    with pytest.raises(ConfigError, match=message):
        tuning.for_space(TINY, space(**extra))


def test_member_counts_are_checked_against_the_program():
    trainer = PopulationTrainer("cart_pole", "earth", TINY, 2)
    with pytest.raises(ConfigError, match="needs a trainer built for the search space"):
        trainer.init(KEY, [{**BASE, "epochs": 2}] * 2)
    config = tuning.for_space(TINY, space(epochs=Int(1, 3), minibatches=Categorical((1, 2))))
    trainer = PopulationTrainer("cart_pole", "earth", config, 2)
    with pytest.raises(ConfigError, match=r"outside 1\.\.3"):
        trainer.init(KEY, [{**BASE, "epochs": 4, "minibatches": 1}] * 2)
    with pytest.raises(ConfigError, match="not positive divisors of the program's 2 chunks"):
        trainer.init(KEY, [{**BASE, "epochs": 1, "minibatches": 4}] * 2)


def test_standardised_per_minibatch_of_chunks_by_hand():
    adv = jnp.arange(8.0) ** 2  # 4 chunks of 2; minibatches of 2 chunks
    out = np.asarray(_standardised(adv, 4, 2, None))
    for half in (slice(0, 4), slice(4, 8)):
        a = np.arange(8.0)[half] ** 2
        np.testing.assert_allclose(out[half], (a - a.mean()) / (a.std() + 1e-8), rtol=1e-5)
    raw = np.asarray(_standardised(adv, 4, 2, jnp.float32(0.0)))
    np.testing.assert_array_equal(raw, np.asarray(adv))


@pytest.mark.parametrize(  # 2: minibatches of 2 chunks, accumulated (1 and 4: the same path)
    "count", [pytest.param(1, marks=pytest.mark.slow), 2, pytest.param(4, marks=pytest.mark.slow)]
)
def test_a_tuned_minibatch_count_equals_the_untuned_update_with_it(count):
    config = tuning.for_space(TINY, space(minibatches=Categorical((1, 2, 4))))
    tuned = trained(config, [{**BASE, "minibatches": count}] * 2)
    plain = trained(TINY.with_overrides(minibatch_size=128 // count), [BASE] * 2)
    member_close(tuned, plain, 0)


def test_masked_epochs_change_nothing_beyond_a_members_count():
    # A member with 3 passes in a program of up to 6 trains as in a program of up to 3.
    wide = tuning.for_space(TINY, space(epochs=Int(1, 6)))
    narrow = tuning.for_space(TINY, space(epochs=Int(1, 3)))
    member_close(
        trained(wide, [{**BASE, "epochs": 3}] * 2), trained(narrow, [{**BASE, "epochs": 3}] * 2), 0
    )
    # ... and a fourth pass does change it.
    more = trained(wide, [{**BASE, "epochs": 4}] * 2)
    with pytest.raises(AssertionError):
        member_close(more, trained(narrow, [{**BASE, "epochs": 3}] * 2), 0)


def test_a_tuned_epoch_count_trains_that_many_passes():
    # One pass of one minibatch step per pass: the update is Adam's first steps, one per pass.
    one = TINY.with_overrides(minibatch_size=128)
    tuned = tuning.for_space(one, space(epochs=Int(1, 4)))
    for count in (1, 3):
        state = trained(tuned, [{**BASE, "epochs": count}] * 2)
        assert int(np.asarray(state.opt_state.inner_state[1][0].count)[0]) == 2 * count


def test_a_tuned_gamma_equals_the_preset_with_it():
    config = tuning.for_space(TINY, space(gamma=Categorical((0.9, 0.99))))
    tuned = trained(config, [{**BASE, "gamma": 0.9}] * 2)
    plain = trained(TINY.with_overrides(gamma=0.9), [BASE] * 2)
    member_close(tuned, plain, 0)


def test_advantage_normalisation_on_equals_the_default_update():
    config = tuning.for_space(TINY, space(adv_norm=Categorical((True, False))))
    tuned = trained(config, [{**BASE, "adv_norm": True}] * 2)
    plain = trained(TINY, [BASE] * 2)
    member_close(tuned, plain, 0)


def test_each_members_value_changes_only_its_update_and_compiles_nothing_new():
    extra = {
        "epochs": Int(1, 3),
        "minibatches": Categorical((1, 2)),
        "adv_norm": Categorical((True, False)),
    }
    config = tuning.for_space(TINY, space(**extra))
    trainer = PopulationTrainer("cart_pole", "earth", config, 3)
    base = {**BASE, "epochs": 2, "minibatches": 2, "adv_norm": True}
    state = trainer.init(KEY, [dict(base)] * 3)
    reference = trainer.train(state, config.batch_size)
    for name, value in (("epochs", 3), ("minibatches", 1), ("adv_norm", False)):
        changed = trainer.set_hparams(state, [dict(base), {**base, name: value}, dict(base)])
        after = trainer.train(changed, config.batch_size)
        for member, differs in ((0, False), (1, True), (2, False)):
            assert same_member(reference.params, after.params, member) != differs, (name, member)
    assert trainer._train.cache_size() == 1

"""Per-member ``lambda`` and ``clip`` reach that member's PPO update, and only it."""

import jax
import pytest

from tests.engine.helpers import same_member, tiny

TINY = tiny()
BASE = {"lr": 3e-3, "lambda": 0.95, "clip": 0.2}


@pytest.mark.parametrize(("name", "value"), [("lambda", 0.5), ("clip", 0.01)])
def test_a_members_lambda_or_clip_changes_only_its_update(cart_pole_trainer, name, value):
    base = cart_pole_trainer.init(jax.random.PRNGKey(0), [dict(BASE) for _ in range(3)])
    configs = [dict(BASE), {**BASE, name: value}, dict(BASE)]
    changed = cart_pole_trainer.set_hparams(base, configs)
    a = cart_pole_trainer.train(base, TINY.batch_size)
    b = cart_pole_trainer.train(changed, TINY.batch_size)
    for member, differs in ((0, False), (1, True), (2, False)):
        same = same_member(a.params, b.params, member)
        assert same != differs, (name, member)

import pytest

from rlcourse.training import recipes
from rlcourse.core.errors import RLCourseError
from rlcourse.training.train import validate_config


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_every_recipe_makes_a_valid_config(name):
    cfg = recipes.recipe_config(name, "FetchPush-v4", seed=1, total_steps=50_000, out_dir="/tmp/x")
    validate_config(cfg)
    assert cfg.her and cfg.her_kwargs["n_sampled_goal"] == 4 and cfg.algo == recipes.RECIPES[name]["algo"]
    if "buffer_size" in cfg.hyperparameters:
        assert cfg.hyperparameters["buffer_size"] == 50_000  # capped at what the run can fill
    assert cfg.hyperparameters["gamma"] == 0.95 and cfg.hyperparameters["ent_coef"] == 0.05


def test_no_her_and_k_override_change_only_the_relabelling():
    base = recipes.recipe_config("fast", "FetchPush-v4", seed=0, total_steps=1000)
    plain = recipes.recipe_config("fast", "FetchPush-v4", seed=0, total_steps=1000, her=False)
    k8 = recipes.recipe_config("fast", "FetchPush-v4", seed=0, total_steps=1000, n_sampled_goal=8, run_id="k8")
    assert not plain.her and plain.her_kwargs == {} and plain.hyperparameters == base.hyperparameters
    assert k8.her_kwargs["n_sampled_goal"] == 8 and k8.resolved_run_id() == "k8"
    assert plain.resolved_run_id() == "fastsac_FetchPush-v4_seed0"
    assert base.resolved_run_id() == "fastsac_her_FetchPush-v4_seed0"


def test_recipes_are_copied_and_unknown_names_rejected():
    a = recipes.recipe("fast")
    a["hyperparameters"]["hidden"] = 1
    assert recipes.recipe("fast")["hyperparameters"]["hidden"] == recipes.RECIPES["fast"]["hyperparameters"]["hidden"]
    with pytest.raises(RLCourseError, match="unknown recipe"):
        recipes.recipe("slow")


def test_a_recipe_brings_its_camera_and_the_run_may_replace_it():
    cfg = recipes.recipe_config("pixels", "FetchReach-v4", seed=0, total_steps=1000)
    assert [w.name for w in cfg.spec.wrappers] == ["pixels"] and cfg.spec.wrappers[0].params["size"] == 64
    own = recipes.recipe_config("pixels", "FetchReach-v4", seed=0, total_steps=1000,
                                wrappers=["action_noise:sigma=0.1", "pixels:size=48"])
    assert [(w.name, w.params.get("size")) for w in own.spec.wrappers] == [("action_noise", None), ("pixels", 48)]
    noisy = recipes.recipe_config("pixels", "FetchReach-v4", seed=0, total_steps=1000,
                                  wrappers=["action_noise:sigma=0.1"])
    assert [w.name for w in noisy.spec.wrappers] == ["action_noise", "pixels"]  # the camera stays outermost
    assert recipes.recipe_config("fast", "FetchReach-v4", seed=0, total_steps=1000).spec.wrappers == ()


def test_changes_from_is_what_a_recipe_adds_to_its_base():
    assert recipes.changes_from("fast_worker") == {"env_worker": True}
    assert recipes.changes_from("fast") == {}
    assert {**recipes.recipe("fast")["hyperparameters"], **recipes.changes_from("push_demos")} == \
        recipes.recipe("push_demos")["hyperparameters"]
    with pytest.raises(RLCourseError, match="unknown recipe"):
        recipes.changes_from("warp")

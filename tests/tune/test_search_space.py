"""The spec's distributions become Ray Tune's, and the scheduler gets its rungs."""

from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.sample import Categorical, Float, Integer

from vtp.config import from_dict
from vtp.tune.search import param_space, scheduler
from vtp.tune.spec import TuneSpec


def test_distributions_map_to_ray_tune():
    space = param_space({"lr": {"loguniform": [1e-4, 1e-2]}, "wd": {"choice": [0.0, 0.05]},
                         "warm": {"uniform": [0.0, 0.1]}, "depth": {"randint": [1, 4]},
                         "lam": {"grid": [0.1, 1.0]}, "objective": "ae"})
    assert isinstance(space["lr"], Float) and (space["lr"].lower, space["lr"].upper) == (1e-4, 1e-2)
    assert type(space["lr"].sampler).__name__ == "_LogUniform"
    assert isinstance(space["wd"], Categorical) and space["wd"].categories == [0.0, 0.05]
    assert isinstance(space["warm"], Float) and type(space["warm"].sampler).__name__ == "_Uniform"
    assert isinstance(space["depth"], Integer) and (space["depth"].lower, space["depth"].upper) == (1, 4)
    assert space["lam"] == {"grid_search": [0.1, 1.0]}
    assert space["objective"] == "ae"


def test_asha_rungs_default_to_the_reports_of_a_full_trial():
    spec = from_dict(TuneSpec, {"space": {"lr": 1e-3}, "metric": "m",
                                "scheduler": {"grace_period": 1, "reduction_factor": 3}})
    asha = scheduler(spec, reports=9)
    assert isinstance(asha, ASHAScheduler)
    assert asha._max_t == 9 and asha._reduction_factor == 3
    fifo = from_dict(TuneSpec, {"space": {"lr": 1e-3}, "metric": "m", "scheduler": {"kind": "fifo"}})
    assert isinstance(scheduler(fifo, reports=9), FIFOScheduler)

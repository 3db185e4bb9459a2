"""Scale-out on dask.distributed: chunks evaluated on a LocalCluster's worker processes give the
single-process results exactly (the client merges the partial results in chunk order)."""

import numpy as np
import pytest

import tensorperf as tp

distributed = pytest.importorskip("distributed")

GRID = dict(
    model=["llama-3.1-70b", "mixtral-8x7b"],
    hardware=["h100-sxm", "b200"],
    prompt_len=[1024, 8192],
    batch=[1, 8, 64],
    tp=[1, 2, 4, 8],
    pp=[1, 2, 4],
    ep=[1, 2, 8],
)


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    ) as cluster:
        yield cluster


def test_best_on_a_cluster_equals_the_single_process_result(cluster):
    where = {"tokens_per_s_per_user": (">=", 20)}
    local = tp.best("tokens_per_s_per_gpu", where=where, keep=["hardware"], chunk_points=97, **GRID)
    with distributed.Client(cluster) as client:
        remote = tp.best("tokens_per_s_per_gpu", where=where, keep=["hardware"], chunk_points=97, client=client, **GRID)
        workers = client.run(lambda: 1)
    assert len(workers) == 2
    for v in local.data_vars:
        np.testing.assert_array_equal(remote[v].values, local[v].values, err_msg=v)
    assert bool(remote.found.all())


def test_pareto_with_a_scheduler_address_equals_the_single_process_result(cluster):
    local = tp.pareto(chunk_points=200, **GRID).to_dataframe()
    remote = tp.pareto(chunk_points=200, client=cluster.scheduler_address, **GRID).to_dataframe()
    assert len(remote) == len(local) > 0
    for column in local.columns:
        np.testing.assert_array_equal(remote[column].values, local[column].values, err_msg=column)


def test_an_unreachable_scheduler_is_a_spec_error():
    with pytest.raises(tp.SpecError, match="client"):
        tp.best(client="tcp://127.0.0.1:1", model="llama-3.1-8b", hardware="h100-sxm", batch=[1, 2], chunk_points=1)


def test_sweep_on_a_cluster_equals_the_single_process_dataset(cluster):
    # the whole Dataset (per-op breakdown included), its chunks evaluated on the workers
    grid = {**GRID, "chunk_size": [512, 65536]}
    local = tp.sweep(**grid)
    with distributed.Client(cluster) as client:
        remote = tp.sweep(**grid, client=client, chunk_points=150)
    assert list(remote.data_vars) == list(local.data_vars) and remote.attrs == local.attrs
    for v in local.data_vars:
        assert remote[v].dims == local[v].dims and remote[v].attrs == local[v].attrs, v
        np.testing.assert_array_equal(remote[v].values, local[v].values, err_msg=v)
    assert int(remote.feasible.sum()) > 0


def test_the_command_line_runs_on_a_scheduler(cluster):
    import io

    from tensorperf.interface.cli import main

    flags = [
        "--model",
        "llama-3.1-70b,mixtral-8x7b",
        "--hardware",
        "h100-sxm,b200",
        "--batch",
        "1,8,64",
        "--tp",
        "1,2,4,8",
        "--pp",
        "1,2",
        "--ep",
        "1,8",
    ]
    for command in (["best"], ["pareto"], ["sweep", "--limit", "0"]):
        local, remote = io.StringIO(), io.StringIO()
        assert main([*command, *flags], out=local) == 0
        assert main([*command, *flags, "--scheduler", cluster.scheduler_address], out=remote) == 0
        assert remote.getvalue() == local.getvalue() and len(local.getvalue()) > 200, command

"""Multi-node torchrun on one machine: two agents (``--nnodes 2``, one process each) and a c10d rendezvous.

This is the command every pod of the Kubernetes training Job runs (genai_assets/training/k8s_job.py),
with 127.0.0.1 standing in for pod 0's DNS name: two separate ``torchrun`` agents, started as two
processes that know nothing of each other except the rendezvous endpoint, form one world of two
ranks; the agent that binds the endpoint's port first hosts the rendezvous store, the other joins it.
The run must give the same loss curve as one process with the same global batch.
"""

import os
import signal
import socket
import subprocess

from genai_assets.training.distributed import (
    FAULT_ENV,
    DistributedConfig,
    torchrun_command,
    worker_environment,
)
from genai_assets_tests.test_training_distributed import (
    assert_same_training,
    result_of,
    write_spec,
    write_tiny_token_arrays,
)

AGENT_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_agents(two_node_spec: str, one_process_spec: str) -> list[tuple[int, str]]:
    """Two torchrun agents (nnodes=2, nproc_per_node=1) on one c10d endpoint, plus the one-process reference.

    The three run at the same time (one thread each): ``[(returncode, stderr)]`` for agent 1, agent 2 and
    the reference. Each agent leads its own process group, so a hung or failed run is cleaned up by
    killing the groups (agent + its worker); nothing outlives the test.
    """
    two_nodes = DistributedConfig(
        nproc_per_node=1, nnodes=2, rdzv_endpoint=f"127.0.0.1:{free_port()}", rdzv_id="two-agents"
    )
    # --local_addr: the address the agents advertise for the process group's master (as the pods do
    # with their pod IP); this machine's hostname need not resolve.
    agent_command = torchrun_command(two_nodes, ["--spec", two_node_spec])
    agent_command = [*agent_command[:3], "--local_addr=127.0.0.1", *agent_command[3:]]
    reference_command = torchrun_command(DistributedConfig(nproc_per_node=1), ["--spec", one_process_spec])
    env = {**os.environ, **worker_environment(two_nodes)}
    env.pop(FAULT_ENV, None)
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
        for command in (agent_command, agent_command, reference_command)
    ]  # fmt: skip
    try:
        stderrs = [process.communicate(timeout=AGENT_TIMEOUT_S)[1] for process in processes]
        return [(process.returncode, stderr) for process, stderr in zip(processes, stderrs, strict=True)]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_two_torchrun_agents_on_one_c10d_rendezvous_match_one_process(tmp_path):
    token_data = write_tiny_token_arrays(tmp_path / "tokens")
    two_nodes_dir, one_process_dir = tmp_path / "two_nodes", tmp_path / "one_process"
    outcomes = run_agents(write_spec(two_nodes_dir, *token_data), write_spec(one_process_dir, *token_data))
    assert [code for code, _ in outcomes] == [0, 0, 0], "\n".join(stderr[-2000:] for _, stderr in outcomes)

    # Same global batches and weights across the two "nodes": only the summation order differs.
    assert_same_training(result_of(one_process_dir), result_of(two_nodes_dir), world_sizes=(1, 2))

"""Which `tf.distribute` strategy `mncompile train` runs under, and creating it.

Three cases, chosen from the options (`resolve`, no TensorFlow needed, so bad input fails fast):

* a cluster, from ``TF_CONFIG`` in the environment or from ``--workers HOST:PORT,... --worker-index K``:
  `tf.distribute.MultiWorkerMirroredStrategy` (synchronous data parallelism, gradients all-reduced
  with collective ops; on CPUs the RING implementation over gRPC). Every worker runs the same
  command; they block until all of them have connected (``--peer-timeout``);
* one process mirroring over local devices: `tf.distribute.MirroredStrategy` over every local GPU
  when there are several, or over ``--devices N`` (N GPUs, or the CPU split into N logical devices
  when there is no GPU, which is how the tests exercise it);
* otherwise TensorFlow's default strategy (one device, what `train` always did).

The strategy must exist before TensorFlow runs its first op: a cluster's collective ops and
logical devices can only be configured while TensorFlow's runtime is not yet initialized, so
`start_strategy` is the first TensorFlow call `train` makes.

Why tf.distribute: it is the engine of the framework the model is trained in. Keras' ``fit``
distributes the batches, averages the loss, all-reduces the gradients and synchronizes batch
norm (``BatchNormalization(synchronized=True)``) through it, so N replicas with the same global
batch compute the same update as one process, up to floating-point summation order.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from mncompile.errors import InvalidOptionError, ModelError
from mncompile.progress import NullReporter, Reporter

ENV = "TF_CONFIG"
DEFAULT_PEER_TIMEOUT = 300.0
_HOST_PORT = re.compile(r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9_.-]+)):(?P<port>[0-9]{1,5})$")


@dataclass(frozen=True)
class DistributeOptions:
    """What the user asked for, validated. `workers` empty: no cluster (one process)."""

    workers: tuple[str, ...] = ()  # every worker's HOST:PORT, in worker-index order
    index: int = 0  # this process's place in `workers`
    devices: int | None = None  # mirror over this many local devices; None: all GPUs when several
    source: str = ""  # where the cluster came from: "TF_CONFIG" or "--workers"
    peer_timeout: float = DEFAULT_PEER_TIMEOUT  # seconds to wait for every worker to connect
    chief: bool = False  # TF_CONFIG names the first worker "chief" (cluster.chief), not worker 0

    @property
    def multi_worker(self) -> bool:
        return bool(self.workers)

    @property
    def known_replicas(self) -> int:
        """Replicas known before TensorFlow starts (the GPUs of each worker are not)."""
        return len(self.workers) if self.workers else (self.devices or 1)

    def cluster(self) -> dict[str, list[str]]:
        """The cluster as TF_CONFIG spells it: {"chief": [...], "worker": [...]}, no empty job."""
        jobs = {"chief": list(self.workers[:1]), "worker": list(self.workers[1:])} if self.chief \
            else {"worker": list(self.workers)}
        return {job: tasks for job, tasks in jobs.items() if tasks}

    @property
    def task(self) -> tuple[str, int]:
        """This process as TensorFlow names it: (job, index in the job)."""
        if self.chief:
            return ("chief", 0) if self.index == 0 else ("worker", self.index - 1)
        return "worker", self.index


def resolve(workers: str | None = None, worker_index: int | None = None, devices: int | None = None,
            peer_timeout: float = DEFAULT_PEER_TIMEOUT, environ: dict | None = None) -> DistributeOptions:
    """Check the distribution options against each other and against ``TF_CONFIG`` in `environ`
    (default: the process environment). Raises InvalidOptionError; needs no TensorFlow."""
    environ = os.environ if environ is None else environ
    tf_config = environ.get(ENV, "").strip()
    if not peer_timeout > 0:
        raise InvalidOptionError(f"--peer-timeout must be a positive number of seconds, not {peer_timeout}")
    if devices is not None and devices < 1:
        raise InvalidOptionError(f"--devices must be at least 1, not {devices}",
                                 hint="leave --devices out to use every local GPU (or the one CPU)")
    if worker_index is not None and workers is None:
        raise InvalidOptionError("--worker-index was given without --workers",
                                 hint="pass the cluster's addresses, --workers HOST:PORT,HOST:PORT,...")
    if workers is not None and tf_config:
        raise InvalidOptionError(f"both {ENV} (in the environment) and --workers describe the cluster",
                                 hint=f"give one: unset {ENV}, or leave out --workers and --worker-index")
    if workers is not None:
        options = _from_workers(workers, worker_index, peer_timeout)
    elif tf_config:
        options = _from_tf_config(tf_config, peer_timeout)
    else:
        return DistributeOptions(devices=devices, peer_timeout=peer_timeout)
    if devices is not None:
        raise InvalidOptionError(f"--devices mirrors over the devices of one process, and the cluster comes from "
                                 f"{options.source}",
                                 hint="leave --devices out: each worker of a cluster uses all of its GPUs "
                                      "(or its CPU)")
    return options


def _from_workers(workers: str, index: int | None, peer_timeout: float) -> DistributeOptions:
    addresses = _addresses([w.strip() for w in workers.split(",")], "--workers")
    if index is None:
        raise InvalidOptionError("--workers was given without --worker-index",
                                 hint=f"pass --worker-index K, this machine's place in the list (0 to "
                                      f"{len(addresses) - 1}); every worker gets the same --workers")
    if not 0 <= index < len(addresses):
        raise InvalidOptionError(f"--worker-index {index} is out of range: --workers lists {len(addresses)} "
                                 f"worker{'s' if len(addresses) != 1 else ''}",
                                 hint=f"pass 0 to {len(addresses) - 1}")
    return DistributeOptions(workers=addresses, index=index, source="--workers", peer_timeout=peer_timeout)


def _from_tf_config(text: str, peer_timeout: float) -> DistributeOptions:
    fix = (f'set {ENV} to e.g. {{"cluster": {{"worker": ["host1:12345", "host2:12345"]}}, '
           f'"task": {{"type": "worker", "index": 0}}}}, or unset it')
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InvalidOptionError(f"{ENV} is not JSON: {exc}", hint=fix) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not isinstance(cluster.get("worker", cluster.get("chief")), list):
        raise InvalidOptionError(f'{ENV} has no "cluster" with a "worker" list of HOST:PORT addresses', hint=fix)
    if not isinstance(task, dict) or not isinstance(task.get("type"), str) \
            or type(task.get("index", 0)) is not int:
        raise InvalidOptionError(f'{ENV} has no "task" saying which worker this is ({{"type": "worker", '
                                 f'"index": K}})', hint=fix)
    others = sorted(set(cluster) - {"chief", "worker"})
    if others:
        raise InvalidOptionError(f"{ENV} has {', '.join(others)} tasks; mncompile trains with "
                                 "MultiWorkerMirroredStrategy, whose cluster has only chief and worker tasks",
                                 hint="list every machine under cluster.worker")
    chief = cluster.get("chief", [])
    if not isinstance(chief, list) or len(chief) > 1 or not isinstance(cluster.get("worker", []), list):
        raise InvalidOptionError(f'{ENV}: cluster.chief must be a list of at most one address, cluster.worker '
                                 "a list of addresses", hint=fix)
    addresses = _addresses(chief + cluster.get("worker", []), f"{ENV} cluster")
    kind, task_id = task["type"], task.get("index", 0)
    if kind not in ("chief", "worker"):
        raise InvalidOptionError(f'{ENV} task type "{kind}" is not a training worker', hint='use "worker"')
    count = len(chief) if kind == "chief" else len(addresses) - len(chief)
    if not 0 <= task_id < count:
        raise InvalidOptionError(f'{ENV} task index {task_id} is out of range: cluster.{kind} lists {count}',
                                 hint=f"set task.index to 0..{count - 1}" if count else fix)
    index = task_id if kind == "chief" else len(chief) + task_id
    return DistributeOptions(workers=addresses, index=index, source=ENV, peer_timeout=peer_timeout,
                             chief=bool(chief))


def _addresses(items: list, where: str) -> tuple[str, ...]:
    if not items or items == [""]:
        raise InvalidOptionError(f"{where} lists no workers", hint="list HOST:PORT of every worker, "
                                 "comma-separated, e.g. 10.0.0.1:12345,10.0.0.2:12345")
    for item in items:
        match = _HOST_PORT.match(item) if isinstance(item, str) else None
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise InvalidOptionError(f"{where}: {item!r} is not a HOST:PORT address (a port 1-65535)",
                                     hint="write each worker as HOST:PORT, e.g. 10.0.0.1:12345 or [::1]:12345, "
                                          "comma-separated, no spaces inside")
    duplicates = sorted({a for a in items if items.count(a) > 1})
    if duplicates:
        raise InvalidOptionError(f"{where} lists {', '.join(duplicates)} more than once",
                                 hint="each worker needs its own HOST:PORT")
    return tuple(items)


def check_global_batch(batch_size: int, replicas: int) -> None:
    """The global batch is split evenly over the replicas, so each computes the same share."""
    if batch_size % replicas:
        low = max(replicas, batch_size // replicas * replicas)
        raise InvalidOptionError(f"--batch-size {batch_size} (the global batch) does not split evenly over "
                                 f"{replicas} replicas",
                                 hint=f"pass a multiple of {replicas}, e.g. --batch-size {low} or "
                                      f"{low + replicas}")


@dataclass(frozen=True)
class Distribution:
    """A created strategy and what the sidecar records about it."""

    strategy: object
    kind: str  # "default", "mirrored" or "multi-worker"
    workers: int
    index: int
    replicas: int

    def scope(self):
        return self.strategy.scope()

    @property
    def synchronized(self) -> bool:
        """Batch norm must average its statistics over the replicas: more than one computes a batch."""
        return self.replicas > 1

    def to_json(self) -> dict:
        return {"strategy": self.kind, "workers": self.workers, "worker_index": self.index,
                "replicas": self.replicas}


def start_strategy(options: DistributeOptions, reporter: Reporter = NullReporter()) -> Distribution:
    """Create the strategy `options` describe. Call it before TensorFlow runs any op; in a cluster it
    blocks until every worker has connected (ModelError after ``options.peer_timeout`` seconds)."""
    from mncompile.tfenv import tf_module

    tf = tf_module()
    if options.multi_worker:
        return _multi_worker(tf, options, reporter)
    gpus = tf.config.list_physical_devices("GPU")
    wanted = options.devices if options.devices is not None else (len(gpus) if len(gpus) > 1 else 1)
    if wanted == 1:
        return Distribution(tf.distribute.get_strategy(), "default", 1, 0, 1)
    if gpus:
        if wanted > len(gpus):
            raise InvalidOptionError(f"--devices {wanted} asks for more GPUs than the {len(gpus)} this machine has",
                                     hint=f"pass --devices {len(gpus)} or fewer")
        names = [f"/gpu:{i}" for i in range(wanted)]
        what = f"{wanted} GPUs"
    else:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
        except RuntimeError as exc:
            raise ModelError(f"cannot split the CPU into {wanted} logical devices: {exc}",
                             hint="the strategy must be created before TensorFlow runs any op") from None
        names = [f"/cpu:{i}" for i in range(wanted)]
        what = f"{wanted} logical CPU devices (no GPU)"
    strategy = tf.distribute.MirroredStrategy(names, cross_device_ops=tf.distribute.ReductionToOneDevice())
    reporter.info(f"MirroredStrategy over {what}: {strategy.num_replicas_in_sync} replicas")
    return Distribution(strategy, "mirrored", 1, 0, strategy.num_replicas_in_sync)


def _multi_worker(tf, options: DistributeOptions, reporter: Reporter) -> Distribution:
    # The public API cannot bound the wait for peers: configure TensorFlow's coordination service as the
    # strategy would, plus a registration timeout (the strategy then keeps this configuration).
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    size, me = len(options.workers), options.workers[options.index]
    cluster = options.cluster()
    reporter.info(f"worker {options.index} of {size} ({me}, cluster from {options.source}): waiting up to "
                  f"{options.peer_timeout:g} s for {', '.join(a for a in options.workers if a != me) or 'no peer'}")
    if context.context()._context_handle is not None:  # private, and the only way to know it is too late
        raise ModelError("TensorFlow was already running when the multi-worker strategy was to be created",
                         hint="call mncompile.model.distribute.start_strategy before any TensorFlow op")
    leader = f"/job:{next(iter(cluster))}/replica:0/task:0"
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=leader,
        cluster_register_timeout_in_ms=int(options.peer_timeout * 1000),
        coordinated_jobs=[coordination_config_pb2.CoordinatedJob(name=job, num_tasks=len(tasks))
                          for job, tasks in cluster.items() if tasks])
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(cluster), task_type=options.task[0], task_id=options.task[1], rpc_layer="grpc")
    implementation = (tf.distribute.experimental.CommunicationImplementation.AUTO
                      if tf.config.list_physical_devices("GPU") else
                      tf.distribute.experimental.CommunicationImplementation.RING)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation))
    except (tf.errors.OpError, RuntimeError, ValueError) as exc:
        raise ModelError(f"worker {options.index} could not join the cluster of {size} ({me}): "
                         f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}",
                         hint=f"start every worker within --peer-timeout {options.peer_timeout:g} s, with the "
                              "same worker list, each with its own index; check that every HOST:PORT is "
                              "reachable from every machine and the ports are free") from None
    reporter.info(f"cluster ready: {size} workers, {strategy.num_replicas_in_sync} replicas, this is worker "
                  f"{options.index}{' (chief)' if options.index == 0 else ''}")
    return Distribution(strategy, "multi-worker", size, options.index, strategy.num_replicas_in_sync)


def work_around_keras_build(model, distribution: Distribution) -> None:
    """Let Keras' ``fit`` run under a multi-replica strategy: two work-arounds on this model instance.

    Keras 3 (3.15, and its main branch as of writing; keras-team/keras#20585) fails there twice:

    * it builds the model from the first batch averaged over the replicas (``strategy.reduce("MEAN",
      (x, y))``), which the strategy cannot reduce ("Attempt to convert a value (PerReplica ...)"). That
      batch only gives the shapes and dtypes to build with, so this worker's own share serves as well;
      Keras then rewinds the data (``epoch_iterator.reset()``) as before;
    * it averages each step's logs over the workers with ``strategy.reduce("MEAN", value, axis=0)``,
      which fails on the scalar loss and metrics ("Invalid reduction dimension 0"). The steps return them
      as 1-element vectors, which that reduce averages into the scalar Keras expects.

    The gradients, the optimizer and the weights are untouched: only what Keras builds from and logs."""
    if distribution.replicas == 1:  # MirroredStrategy meets the first one too: a first batch of odd size
        return
    import types

    from mncompile.tfenv import tf_module

    tf = tf_module()
    strategy = distribution.strategy
    keras_build = model._maybe_symbolic_build

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def build(self, iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(local, next(batches))
                break
        return keras_build(data_batch=data_batch)

    def vectors(logs):
        return tf.nest.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, logs)

    keras_train_step, keras_test_step = model.train_step, model.test_step
    model._maybe_symbolic_build = types.MethodType(build, model)
    model.train_step = lambda data: vectors(keras_train_step(data))
    model.test_step = lambda data: vectors(keras_test_step(data))

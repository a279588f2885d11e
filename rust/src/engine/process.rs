//! The cluster's processes (`python -m workbench.cluster scheduler|executor`): Ballista's
//! scheduler and executor, started from this library so they know the workbench's
//! functions. Each blocks until the process is stopped.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use pyo3::prelude::*;
use tokio::runtime::Runtime;

use super::{ClusterError, workbench_functions, workbench_session_state};

/// Ballista's log (the `log` crate) on standard error, from `level` up.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

fn log_to_stderr(level: &str) -> PyResult<()> {
    let filter: log::LevelFilter = level.parse().map_err(|_| {
        ClusterError::new_err(format!(
            "--log {level}: use error, warn, info, debug or off"
        ))
    })?;
    // Only the first call of a process installs it; the level can still change.
    let _ = log::set_logger(&StderrLog);
    log::set_max_level(filter);
    Ok(())
}

/// A runtime for one cluster process: Ballista's binaries run theirs with 32 MiB stacks
/// (deep plans recurse while they are planned and encoded).
fn process_runtime(name: &str) -> PyResult<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .thread_stack_size(32 << 20)
        .build()
        .map_err(|e| ClusterError::new_err(format!("could not start a runtime: {e}")))
}

/// Run a Ballista scheduler on `host:port` (gRPC and its REST API on the one port) until
/// the process is stopped. Executors are pushed tasks; `external_host` is the name
/// executors and clients are told to reach it by.
#[pyfunction]
#[pyo3(signature = (host, port, external_host=None, log="warn", executor_timeout_s=20))]
pub fn run_scheduler(
    py: Python<'_>,
    host: String,
    port: u16,
    external_host: Option<String>,
    log: &str,
    executor_timeout_s: u64,
) -> PyResult<()> {
    log_to_stderr(log)?;
    let address: SocketAddr = format!("{host}:{port}")
        .parse()
        .map_err(|e| ClusterError::new_err(format!("--bind {host}:{port}: {e}")))?;
    let config = SchedulerConfig {
        bind_host: host.clone(),
        bind_port: port,
        external_host: external_host.unwrap_or(host),
        scheduling_policy: TaskSchedulingPolicy::PushStaged,
        override_session_builder: Some(Arc::new(workbench_session_state)),
        // An executor that stops sending heartbeats is lost after this long, and the
        // tasks it ran are run again elsewhere (Ballista: 180 s, checked every 15 s).
        executor_timeout_seconds: executor_timeout_s,
        expire_dead_executor_interval_seconds: (executor_timeout_s / 4).max(1),
        ..SchedulerConfig::default()
    };
    let runtime = process_runtime("wb-scheduler")?;
    py.detach(|| {
        runtime.block_on(async move {
            let cluster = BallistaCluster::new_from_config(&config).await?;
            start_server(cluster, address, Arc::new(config)).await
        })
    })
    .map_err(|e| ClusterError::new_err(format!("the scheduler stopped: {e}")))
}

/// Run a Ballista executor that registers with the scheduler at
/// `scheduler_host:scheduler_port` and serves its results over Arrow Flight on
/// `host:port` (`grpc_port`: the scheduler's calls, e.g. to cancel tasks), with `slots`
/// task slots, until it is stopped (Ctrl-C or SIGTERM; it tells the scheduler it leaves).
#[pyfunction]
#[pyo3(signature = (scheduler_host, scheduler_port, host, port, grpc_port, slots, work_dir=None, external_host=None, connect_timeout_s=10, log="warn", heartbeat_s=5))]
#[allow(clippy::too_many_arguments)]
pub fn run_executor(
    py: Python<'_>,
    scheduler_host: String,
    scheduler_port: u16,
    host: String,
    port: u16,
    grpc_port: u16,
    slots: usize,
    work_dir: Option<String>,
    external_host: Option<String>,
    connect_timeout_s: u16,
    log: &str,
    heartbeat_s: u64,
) -> PyResult<()> {
    log_to_stderr(log)?;
    let functions = workbench_functions().map_err(|e| ClusterError::new_err(e.to_string()))?;
    let config = ExecutorProcessConfig {
        bind_host: host,
        external_host,
        port,
        grpc_port,
        scheduler_host,
        scheduler_port,
        scheduler_connect_timeout_seconds: connect_timeout_s,
        vcores: slots.max(1),
        work_dir,
        task_scheduling_policy: TaskSchedulingPolicy::PushStaged,
        override_function_registry: Some(Arc::new(functions)),
        executor_heartbeat_interval_seconds: heartbeat_s.max(1),
        ..ExecutorProcessConfig::default()
    };
    let runtime = process_runtime("wb-executor")?;
    py.detach(|| runtime.block_on(start_executor_process(Arc::new(config))))
        .map_err(|e| ClusterError::new_err(format!("the executor stopped: {e}")))
}

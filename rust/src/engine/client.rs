//! The client side: a Ballista session that submits the Python session's plans as jobs,
//! and the query handle Python pulls batches from, cancels and reads the stages of.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ballista_core::config::BALLISTA_CLIENT_PULL;
use ballista_core::execution_plans::DistributedQueryExec;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{CancelJobParams, GetJobMetricsParams, OperatorMetric};
use ballista_core::serde::{BallistaCodec, BallistaLogicalExtensionCodec};
use ballista_core::{ConfigProducer, RuntimeProducer};
use ballista_executor::new_standalone_executor_from_builder;
use ballista_scheduler::standalone::new_standalone_scheduler_with_builder;
use datafusion_proto::bytes::logical_plan_from_bytes_with_extension_codec;
use datafusion_proto::protobuf::LogicalPlanNode;
use deltalake_core::datafusion::execution::session_state::SessionState;
use deltalake_core::datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use deltalake_core::datafusion::prelude::SessionConfig;
use futures::StreamExt;
use pyo3::prelude::*;

use super::{ClusterError, workbench_session_state};
use crate::delta::provider::ArrowBatches;
use crate::delta::runtime::runtime;

/// The scheduler URL of this process's standalone cluster, started once.
static STANDALONE: OnceLock<String> = OnceLock::new();

/// The runtime the standalone scheduler and executor live on. Its threads are named
/// `wb-standalone` so the stall watch can tell their CPU (an idle executor asks for work
/// every 50 ms) from the CPU of the query it watches.
static STANDALONE_RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

fn standalone_runtime() -> &'static tokio::runtime::Runtime {
    STANDALONE_RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("wb-standalone")
            .build()
            .expect("the workbench extension could not start the standalone cluster's runtime")
    })
}

fn cluster_error(message: impl std::fmt::Display) -> PyErr {
    ClusterError::new_err(message.to_string())
}

/// A scheduler and one executor inside this process, on a runtime of their own, started
/// at the first call; its URL. Both know the workbench's functions; the executor pulls
/// tasks (Ballista's standalone mode), with `slots` task slots.
fn standalone(slots: usize) -> Result<String, String> {
    if let Some(url) = STANDALONE.get() {
        return Ok(url.clone());
    }
    let started = standalone_runtime().block_on(async {
        let config_producer: ConfigProducer = Arc::new(SessionConfig::new_with_ballista);
        let addr: SocketAddr = new_standalone_scheduler_with_builder(
            Arc::new(workbench_session_state),
            Arc::clone(&config_producer),
            BallistaCodec::default(),
        )
        .await
        .map_err(|e| format!("the standalone scheduler did not start: {e}"))?;
        let url = format!("http://{addr}");
        let scheduler = SchedulerGrpcClient::connect(url.clone())
            .await
            .map_err(|e| format!("the standalone scheduler at {url} did not answer: {e}"))?;
        let state = workbench_session_state(SessionConfig::new_with_ballista())
            .map_err(|e| e.to_string())?;
        let functions = BallistaFunctionRegistry::from(&state);
        let runtime_env = Arc::clone(state.runtime_env());
        let runtime_producer: RuntimeProducer = Arc::new(move |_| Ok(Arc::clone(&runtime_env)));
        new_standalone_executor_from_builder(
            scheduler,
            slots,
            config_producer,
            runtime_producer,
            BallistaCodec::default(),
            functions,
        )
        .await
        .map_err(|e| format!("the standalone executor did not start: {e}"))?;
        Ok::<_, String>(url)
    })?;
    Ok(STANDALONE.get_or_init(|| started).clone())
}

/// A Ballista client session (Python: `workbench._ext.ClusterClient`).
#[pyclass(name = "ClusterClient", module = "workbench._ext", frozen)]
pub struct ClusterClient {
    url: String,
    state: SessionState,
}

impl ClusterClient {
    fn with_settings(url: String, settings: Vec<(String, String)>) -> PyResult<Self> {
        let state = client_state(settings).map_err(cluster_error)?;
        Ok(Self { url, state })
    }
}

/// The client's session: Ballista's configuration with `settings`, the workbench's functions.
fn client_state(settings: Vec<(String, String)>) -> Result<SessionState, String> {
    let mut config = SessionConfig::new_with_ballista();
    // Pull: the scheduler answers the submission with the job id at once (push mode sends
    // it with the first status, after planning), so Ctrl-C can always cancel.
    let pull = [(BALLISTA_CLIENT_PULL.to_string(), "true".to_string())];
    for (key, value) in pull.into_iter().chain(settings) {
        config
            .options_mut()
            .set(&key, &value)
            .map_err(|e| format!("setting {key}={value}: {e}"))?;
    }
    workbench_session_state(config).map_err(|e| e.to_string())
}

/// The job of `plan` (datafusion-proto bytes of a logical plan) for the scheduler at `url`,
/// and its stream; nothing is sent before the stream is first polled.
fn submitted(
    url: &str,
    state: &SessionState,
    plan: &[u8],
) -> Result<
    (
        Arc<DistributedQueryExec<LogicalPlanNode>>,
        SendableRecordBatchStream,
    ),
    String,
> {
    let decoded = logical_plan_from_bytes_with_extension_codec(
        plan,
        &state.task_ctx(),
        &BallistaLogicalExtensionCodec::default(),
    )
    .map_err(|e| format!("the plan could not be decoded: {e}"))?;
    let exec = Arc::new(DistributedQueryExec::<LogicalPlanNode>::with_extension(
        url.to_string(),
        state.config().ballista_config(),
        decoded,
        Arc::new(BallistaLogicalExtensionCodec::default()),
        state.session_id().to_string(),
    ));
    let _entered = runtime().enter();
    let stream = exec
        .execute(0, state.task_ctx())
        .map_err(|e| e.to_string())?;
    Ok((exec, stream))
}

#[pymethods]
impl ClusterClient {
    /// A client of the scheduler at `url` (`http://host:port`); it does not connect yet.
    /// `settings` are DataFusion/Ballista settings every job carries.
    #[new]
    #[pyo3(signature = (url, settings=Vec::new()))]
    fn new(url: String, settings: Vec<(String, String)>) -> PyResult<Self> {
        Self::with_settings(url, settings)
    }

    /// A client of this process's standalone cluster, started at the first call with
    /// `slots` task slots (later calls reuse it, whatever their `slots`).
    #[staticmethod]
    #[pyo3(signature = (slots, settings=Vec::new()))]
    fn standalone(py: Python<'_>, slots: usize, settings: Vec<(String, String)>) -> PyResult<Self> {
        let url = py
            .detach(|| standalone(slots.max(1)))
            .map_err(cluster_error)?;
        Self::with_settings(url, settings)
    }

    /// Submit `plan` as a job. Nothing is sent before the first `next_batch`.
    fn submit(&self, plan: Vec<u8>) -> PyResult<ClusterQuery> {
        let (exec, stream) = submitted(&self.url, &self.state, &plan).map_err(cluster_error)?;
        Ok(ClusterQuery {
            exec,
            stream: Mutex::new(Some(stream)),
            url: self.url.clone(),
        })
    }
}

/// One job on the cluster (Python: `workbench._ext.ClusterQuery`). Ballista hands the
/// rows over when the job has succeeded, from the executors that hold its last stage.
#[pyclass(name = "ClusterQuery", module = "workbench._ext", frozen)]
pub struct ClusterQuery {
    exec: Arc<DistributedQueryExec<LogicalPlanNode>>,
    stream: Mutex<Option<SendableRecordBatchStream>>,
    url: String,
}

/// What waiting `timeout` for the next batch of `stream` gave.
enum Pulled {
    Batch(ArrowBatches),
    Waiting,
    End,
}

fn pull(stream: &mut SendableRecordBatchStream, timeout: Duration) -> Result<Pulled, String> {
    let waited = runtime().block_on(async { tokio::time::timeout(timeout, stream.next()).await });
    match waited {
        Err(_) => Ok(Pulled::Waiting),
        Ok(None) => Ok(Pulled::End),
        Ok(Some(Ok(batch))) => Ok(Pulled::Batch(ArrowBatches::new(
            batch.schema(),
            vec![batch],
        ))),
        Ok(Some(Err(e))) => Err(e.to_string()),
    }
}

/// One operator of a stage: depth, type, description, `(metric, partition, value)`.
type StageOperator = (u32, String, String, Vec<(String, Option<u32>, u64)>);

/// A numeric metric of an operator as `(name, partition, value)`, under DataFusion's
/// names (`elapsed_compute` for the elapsed time); timestamps and ratios are left out.
fn metric_value(metric: &OperatorMetric) -> Option<(String, Option<u32>, u64)> {
    let (name, value) = match metric.metric.as_ref()? {
        Metric::OutputRows(v) => ("output_rows".to_string(), *v),
        Metric::ElapseTime(v) => ("elapsed_compute".to_string(), *v),
        Metric::SpillCount(v) => ("spill_count".to_string(), *v),
        Metric::SpilledBytes(v) => ("spilled_bytes".to_string(), *v),
        Metric::SpilledRows(v) => ("spilled_rows".to_string(), *v),
        Metric::OutputBytes(v) => ("output_bytes".to_string(), *v),
        Metric::OutputBatches(v) => ("output_batches".to_string(), *v),
        Metric::Count(named) => (named.name.clone(), named.value),
        Metric::Gauge(named) => (named.name.clone(), named.value),
        Metric::Time(named) => (named.name.clone(), named.value),
        _ => return None,
    };
    Some((name, metric.partition, value))
}

#[pymethods]
impl ClusterQuery {
    /// Wait up to `timeout_ms` for the next batch: `(False, batch)` (an Arrow C stream of
    /// one batch), `(False, None)` still waiting, `(True, None)` the end. Returning every
    /// `timeout_ms` lets Python see Ctrl-C.
    fn next_batch(
        &self,
        py: Python<'_>,
        timeout_ms: u64,
    ) -> PyResult<(bool, Option<ArrowBatches>)> {
        let mut guard = self
            .stream
            .lock()
            .map_err(|_| cluster_error("the query's stream broke"))?;
        let Some(stream) = guard.as_mut() else {
            return Ok((true, None));
        };
        let pulled = py.detach(|| pull(stream, Duration::from_millis(timeout_ms)));
        match pulled {
            Ok(Pulled::Batch(batch)) => Ok((false, Some(batch))),
            Ok(Pulled::Waiting) => Ok((false, None)),
            Ok(Pulled::End) => {
                *guard = None;
                Ok((true, None))
            }
            Err(message) => {
                *guard = None;
                Err(cluster_error(message))
            }
        }
    }

    /// The scheduler's id of the job, once it accepted it.
    #[getter]
    fn job_id(&self) -> Option<String> {
        self.exec.job_id().map(|id| id.to_string())
    }

    /// Cancel the job on the scheduler and drop the stream. A job not yet accepted is
    /// waited for up to `wait_ms` (its id comes with the scheduler's first answer), so it
    /// does not run on unseen. Returns the job id cancelled, if any.
    #[pyo3(signature = (wait_ms=2000))]
    fn cancel(&self, py: Python<'_>, wait_ms: u64) -> PyResult<Option<String>> {
        let mut guard = self
            .stream
            .lock()
            .map_err(|_| cluster_error("the query's stream broke"))?;
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        while self.exec.job_id().is_none() && Instant::now() < deadline {
            let Some(stream) = guard.as_mut() else { break };
            match py.detach(|| pull(stream, Duration::from_millis(50))) {
                Ok(Pulled::Waiting | Pulled::Batch(_)) => {}
                Ok(Pulled::End) | Err(_) => break,
            }
        }
        *guard = None;
        drop(guard);
        let Some(job_id) = self.exec.job_id() else {
            return Ok(None);
        };
        let url = self.url.clone();
        let id = job_id.to_string();
        py.detach(|| {
            runtime().block_on(async move {
                let mut client = SchedulerGrpcClient::connect(url).await?;
                client
                    .cancel_job(CancelJobParams { job_id: id })
                    .await
                    .map_err(|status| {
                        Box::new(status) as Box<dyn std::error::Error + Send + Sync>
                    })?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .map_err(|e| cluster_error(format!("job {job_id} could not be cancelled: {e}")))?;
        Ok(Some(job_id.to_string()))
    }

    /// The stages that ran, as the scheduler recorded them: `(stage id, partitions,
    /// operators)`, each operator `(depth, type, description, metrics)` in pre-order, with
    /// every numeric metric of every partition as `(name, partition, value)`. Only after
    /// the job succeeded (the scheduler keeps completed stages).
    #[allow(clippy::type_complexity)]
    fn stages(&self, py: Python<'_>) -> PyResult<Vec<(u32, u32, Vec<StageOperator>)>> {
        let job_id = self
            .exec
            .job_id()
            .ok_or_else(|| cluster_error("the job has not been submitted yet"))?
            .to_string();
        let url = self.url.clone();
        let result = py
            .detach(|| {
                runtime().block_on(async move {
                    let mut client = SchedulerGrpcClient::connect(url).await?;
                    let reply = client
                        .get_job_metrics(GetJobMetricsParams { job_id })
                        .await
                        .map_err(Box::new)?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(reply.into_inner())
                })
            })
            .map_err(|e| cluster_error(format!("the job's stages could not be read: {e}")))?;
        Ok(result
            .stages
            .into_iter()
            .map(|stage| {
                let operators = stage
                    .operators
                    .into_iter()
                    .map(|op| {
                        let metrics = op.metrics.iter().filter_map(metric_value).collect();
                        (op.depth, op.operator_type, op.operator_desc, metrics)
                    })
                    .collect();
                (stage.stage_id, stage.partitions, operators)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion_proto::bytes::logical_plan_to_bytes;
    use deltalake_core::arrow::array::{Array, StringArray};
    use deltalake_core::datafusion::prelude::SessionContext;

    fn ids(batches: &[deltalake_core::arrow::record_batch::RecordBatch]) -> Vec<String> {
        batches
            .iter()
            .flat_map(|batch| {
                let column = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                (0..column.len())
                    .map(|i| column.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn a_plan_calling_a_workbench_function_runs_on_the_standalone_cluster_as_it_does_here() {
        let url = standalone(1).unwrap();
        let client_state = client_state(Vec::new()).unwrap();
        let state = workbench_session_state(SessionConfig::new_with_ballista()).unwrap();
        let ctx = SessionContext::new_with_state(state);
        let sql = "SELECT stable_id(column1) AS id FROM (VALUES ('a'), ('b'), ('c')) ORDER BY id";
        let (plan, here) = runtime().block_on(async {
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().into_optimized_plan().unwrap();
            (plan, df.collect().await.unwrap())
        });
        let bytes = logical_plan_to_bytes(&plan).unwrap();
        let (exec, stream) = submitted(&url, &client_state, &bytes).unwrap();
        let there: Vec<_> = runtime()
            .block_on(async { stream.collect::<Vec<_>>().await })
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(ids(&there), ids(&here));
        assert_eq!(ids(&there).len(), 3);
        assert!(exec.job_id().is_some());
    }
}

// Drives a Slipway server with the third-party `mlflow` client from the npm
// registry, exactly as a Node user would. Usage: node client.js URL [TOKEN]
'use strict';
const assert = require('node:assert/strict');
const MLflow = require('mlflow').default || require('mlflow');

// The client prints every request body; keep the output to our own lines.
const say = console.log.bind(console);
console.log = () => {};

const [endpoint, token] = process.argv.slice(2);
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const client = new MLflow({ endpoint, headers });
const { Experiments, Runs, Metrics, Artifacts } = client;

async function rejects(promise, code) {
  try {
    await promise;
  } catch (e) {
    const detail = JSON.parse(e.message.replace(/^Error: /, ''));
    assert.equal(detail.data.error_code, code, e.message);
    return detail;
  }
  assert.fail(`expected ${code}`);
}

(async () => {
  const name = `node-${Date.now()}`;
  const { experiment_id } = await Experiments.create({ name });
  assert.match(experiment_id, /^\d+$/);
  say('ok experiments.create');

  const { experiment } = await Experiments.get({ experiment_id });
  assert.equal(experiment.name, name);
  assert.equal(experiment.lifecycle_stage, 'active');
  assert.equal(experiment.artifact_location, `mlflow-artifacts:/${experiment_id}`);
  say('ok experiments.get');

  const { experiments } = await Experiments.list();
  assert.ok(experiments.some((e) => e.experiment_id === experiment_id));
  assert.ok(experiments.some((e) => e.name === 'Default'));
  say('ok experiments.list');

  await Experiments.update({ experiment_id, new_name: `${name}-renamed` });
  assert.equal((await Experiments.get({ experiment_id })).experiment.name, `${name}-renamed`);
  say('ok experiments.update');

  const { run } = await Runs.create({
    experiment_id,
    user_id: 'node',
    start_time: Date.now(),
    tags: [{ key: 'mlflow.runName', value: 'from-node' }],
  });
  const run_id = run.info.run_id;
  assert.equal(run.info.run_name, 'from-node');
  assert.equal(run.info.status, 'RUNNING');
  say('ok runs.create');

  await Runs.logParameter({ run_id, key: 'lr', value: '0.1' });
  await Runs.logMetric({ run_id, key: 'auc', value: 0.81, timestamp: Date.now(), step: 0 });
  await Runs.logMetric({ run_id, key: 'auc', value: 0.86, timestamp: Date.now(), step: 1 });
  await Runs.setTag({ run_id, key: 'team', value: 'risk' });
  await Runs.logBatch({
    run_id,
    metrics: [
      { key: 'loss', value: 0.5, timestamp: Date.now(), step: 0 },
      { key: 'loss', value: 0.3, timestamp: Date.now(), step: 1 },
    ],
    params: [{ key: 'depth', value: '6' }],
    tags: [{ key: 'stage', value: 'dev' }],
  });
  say('ok runs.log');

  const got = (await Runs.get({ run_id })).run;
  const metrics = Object.fromEntries(got.data.metrics.map((m) => [m.key, m.value]));
  assert.deepEqual(metrics, { auc: 0.86, loss: 0.3 });
  const params = Object.fromEntries(got.data.params.map((p) => [p.key, p.value]));
  assert.deepEqual(params, { depth: '6', lr: '0.1' });
  const tags = Object.fromEntries(got.data.tags.map((t) => [t.key, t.value]));
  assert.equal(tags.team, 'risk');
  assert.equal(tags.stage, 'dev');
  say('ok runs.get');

  await rejects(Runs.logParameter({ run_id, key: 'lr', value: '0.2' }), 'INVALID_PARAMETER_VALUE');
  await rejects(Runs.get({ run_id: 'f'.repeat(32) }), 'RESOURCE_DOES_NOT_EXIST');
  say('ok errors');

  const found = await Runs.search({
    experiment_ids: [experiment_id],
    filter: "metrics.auc > 0.85 and params.lr = '0.1'",
    order_by: ['metrics.auc DESC'],
  });
  assert.equal(found.runs.length, 1);
  assert.equal(found.runs[0].info.run_id, run_id);
  const none = await Runs.search({ experiment_ids: [experiment_id], filter: 'metrics.auc > 0.9' });
  assert.equal(none.runs, undefined);
  say('ok runs.search');

  const history = await Metrics.getHistory({ run_id, metric_key: 'auc' });
  assert.deepEqual(history.metrics.map((m) => [m.step, m.value]), [[0, 0.81], [1, 0.86]]);
  say('ok metrics.getHistory');

  const artifacts = await Artifacts.list({ run_id });
  assert.equal(artifacts.root_uri, run.info.artifact_uri);
  say('ok artifacts.list');

  await Runs.deleteTag({ run_id, key: 'stage' });
  const end = Date.now();
  await Runs.update({ run_id, status: 'FINISHED', end_time: end });
  const finished = (await Runs.get({ run_id })).run.info;
  assert.equal(finished.status, 'FINISHED');
  assert.equal(finished.end_time, end);
  say('ok runs.update');

  await Runs.delete({ run_id });
  assert.equal((await Runs.get({ run_id })).run.info.lifecycle_stage, 'deleted');
  await Runs.restore({ run_id });
  await Experiments.delete({ experiment_id });
  assert.equal((await Experiments.get({ experiment_id })).experiment.lifecycle_stage, 'deleted');
  await Experiments.restore({ experiment_id });
  say('ok lifecycle');
  say('all ok');
})().catch((e) => {
  say(`FAIL: ${e.stack || e}`);
  process.exit(1);
});

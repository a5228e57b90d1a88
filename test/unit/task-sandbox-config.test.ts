import test from 'ava';
import { validateConfig } from '../../src/config';
import { TaskManager } from '../../src/taskmanager/task-manager';
import { silentLogger } from '../../src/util/logger';

test('task sandbox and task log keys: defaults, parsing and what the TaskManager gets', (t) => {
  const defaults = validateConfig({});
  t.is(defaults['taskmanager.task.user'], undefined);
  t.is(defaults['taskmanager.command.allowed'], undefined);
  t.is(defaults['taskmanager.task.secrets-dir'], '/run/secrets');
  t.is(defaults['taskmanager.log.max-bytes'], 10 * 1024 * 1024);
  t.is(defaults['taskmanager.log.max-files'], 3);
  t.is(defaults['taskmanager.log.retention'], 7 * 86_400_000);

  const config = validateConfig({
    'taskmanager.task.user': 'ha-task', 'taskmanager.command.allowed': ['/usr/bin/env', '/opt/jobs/**'],
    'taskmanager.log.max-bytes': '65536', 'taskmanager.log.max-files': 2, 'taskmanager.log.retention': '2h',
  });
  const options = TaskManager.optionsFrom(config, silentLogger, { configFile: '/etc/ha/tm.yaml' });
  t.is(options.taskUser, 'ha-task');
  t.deepEqual(options.allowedCommands, ['/usr/bin/env', '/opt/jobs/**']);
  t.deepEqual(options.log, { maxBytes: 65536, maxFiles: 2 });
  t.is(options.logRetentionMs, 7_200_000);
  t.deepEqual(options.secretFiles, ['/etc/ha/tm.yaml']);
  t.deepEqual(TaskManager.optionsFrom(validateConfig({ 'taskmanager.command.allowed': '/usr/bin/env, /bin/*' })).allowedCommands, ['/usr/bin/env', '/bin/*']);

  t.throws(() => validateConfig({ 'taskmanager.command.allowed': 'env' }), { message: /taskmanager\.command\.allowed.*absolute paths or globs/ });
  t.throws(() => validateConfig({ 'taskmanager.task.user': 'bad user' }), { message: /taskmanager\.task\.user/ });
  t.throws(() => validateConfig({ 'taskmanager.log.max-files': 0 }), { message: /taskmanager\.log\.max-files/ });
});

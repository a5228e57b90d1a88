/**
 * The deployment files are checked, not just shipped: every Kubernetes manifest validates against the
 * Kubernetes schema (kubernetes-models) and refers only to objects that exist; docker/compose.yaml
 * validates against a JSON Schema of the subset it uses plus the invariants that make it work
 * (loopback-only ports, healthchecks, readiness-gated start order, service-name advertised URLs,
 * tokens); and every product configuration embedded in them — ConfigMap, docker/ha-dispatcher.yaml,
 * the -D flags of each replica and TaskManager — passes the product's own loader and validator, runs
 * with trusted cluster state (ZooKeeper digest identity and state key from files), and names only
 * secret files its container mounts.
 */
import test from 'ava';
import Ajv from 'ajv';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import YAML from 'yaml';
import { Namespace, Service, ConfigMap } from 'kubernetes-models/v1';
import { StatefulSet, Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { CONFIG_KEYS, ConfigKey, DispatcherConfig, clusterStateKey, loadConfig } from '../../src/config';
import { packageRoot } from '../../src/util/package-root';

const ROOT = packageRoot();
const K8S_DIR = path.join(ROOT, 'deploy', 'kubernetes');

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; labels?: Record<string, string> }; [k: string]: any };
interface Model { validate(): void }
const MODELS: Record<string, { apiVersion: string; create: (obj: any) => Model }> = {
  Namespace: { apiVersion: 'v1', create: (o) => new Namespace(o) },
  Service: { apiVersion: 'v1', create: (o) => new Service(o) },
  ConfigMap: { apiVersion: 'v1', create: (o) => new ConfigMap(o) },
  StatefulSet: { apiVersion: 'apps/v1', create: (o) => new StatefulSet(o) },
  Deployment: { apiVersion: 'apps/v1', create: (o) => new Deployment(o) },
  PodDisruptionBudget: { apiVersion: 'policy/v1', create: (o) => new PodDisruptionBudget(o) },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', create: (o) => new NetworkPolicy(o) },
};

function yamlFiles(): string[] {
  return fs.readdirSync(K8S_DIR).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort();
}

/** Every document of every manifest file, with the file it came from; YAML errors throw. */
function manifests(): Array<{ file: string; doc: Manifest }> {
  return yamlFiles().flatMap((file) => YAML.parseAllDocuments(fs.readFileSync(path.join(K8S_DIR, file), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0].message}`);
    return { file, doc: d.toJS() as Manifest };
  })).filter(({ doc }) => doc !== null);
}

const kustomization = (): any => YAML.parse(fs.readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8'));
const workloads = (): Manifest[] => manifests().map((m) => m.doc).filter((d) => d.kind === 'StatefulSet' || d.kind === 'Deployment');
const byKind = (kind: string): Manifest[] => manifests().map((m) => m.doc).filter((d) => d.kind === kind);
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** What each shipped secret file holds, in the format its README's command writes. */
const SECRET_CONTENT: Readonly<Record<string, string>> = {
  'rest-token': 'ab'.repeat(32),
  'internal-token': 'cd'.repeat(32),
  // printf 'ha-dispatcher:%s\n' "$(openssl rand -hex 24)"
  'zookeeper-digest': `ha-dispatcher:${'ef'.repeat(24)}`,
  // openssl rand -hex 32
  'state-key': '01'.repeat(32),
};

/** A throwaway stand-in for the secret file `name`, as the Secret or compose secret would mount it. */
function secretFile(name: string): string {
  const content = SECRET_CONTENT[name];
  if (content === undefined) throw new Error(`no stand-in content for the secret ${name}: add it to SECRET_CONTENT`);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-deploy-secret-')), name);
  fs.writeFileSync(file, `${content}\n`, { mode: 0o600 });
  return file;
}

/** Keys naming a file the process reads (tokens, digest identity, state key, credentials, PEM files). */
const FILE_KEYS = CONFIG_KEYS.filter((k): k is ConfigKey => k.endsWith('-file'));

/**
 * The shipped security posture of one container's config: both tokens, the ZooKeeper digest identity
 * and the state key from files, the creator ACL without world read — and every file it names is a
 * mounted secret (`standIns`: the local stand-ins of what the container mounts).
 */
function assertSecured(t: import('ava').ExecutionContext, who: string, cfg: DispatcherConfig, standIns: ReadonlySet<string>): void {
  for (const key of FILE_KEYS) {
    const file = cfg[key] as string | undefined;
    if (file !== undefined) t.true(standIns.has(file), `${who}: ${key} (${file}) is a mounted secret file`);
  }
  t.truthy(cfg['security.rest.token'], `${who}: REST authentication on`);
  t.truthy(cfg['security.internal.token'], `${who}: internal RPC authentication on`);
  t.truthy(cfg['high-availability.zookeeper.client.digest-auth-file'], `${who}: digest-auth-file is set`);
  t.is(cfg['high-availability.zookeeper.client.digest-auth'], SECRET_CONTENT['zookeeper-digest'], `${who}: the ZooKeeper identity is read from the mounted file`);
  t.is(cfg['high-availability.zookeeper.client.acl'], 'creator', `${who}: nodes are locked to the digest identity`);
  t.false(cfg['high-availability.zookeeper.client.acl-world-read'], `${who}: no world read`);
  t.truthy(cfg['high-availability.zookeeper.state-key-file'], `${who}: state-key-file is set`);
  if (standIns.has(cfg['high-availability.zookeeper.state-key-file']!)) {
    t.is(clusterStateKey(cfg)?.toString('utf8'), SECRET_CONTENT['state-key'], `${who}: the state key is read from the mounted file`);
  }
}

/**
 * Runs the product's loader (file < $HA_DISPATCHER_PROPERTIES < -D) on a config as a container sees
 * it. `mounted` maps in-container token paths to local stand-ins, since the validator reads them.
 */
function productConfig(configText: string, overrides: string[], mounted: Map<string, string>, env: Record<string, string> = {}): DispatcherConfig {
  let text = configText;
  for (const [inContainer, local] of mounted) text = text.split(inContainer).join(local);
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ha-deploy-config-')), 'ha-dispatcher.yaml');
  fs.writeFileSync(file, text);
  return loadConfig({ file, overrides, env });
}

/** The process arguments as bin/ha-dispatcher.js parses them: verb, --config, -D list. */
function processArgs(argv: string[]): { verb: string; config: string | undefined; overrides: string[] } {
  const [verb, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, D: { type: 'string', short: 'D', multiple: true } } });
  return { verb, config: values.config, overrides: values.D ?? [] };
}

// ---------------------------------------------------------------- Kubernetes

test('every Kubernetes manifest parses and validates against the Kubernetes schema of its kind', (t) => {
  const all = manifests();
  t.true(all.length >= 10, `found only ${all.length} manifests`);
  for (const { file, doc } of all) {
    const model = MODELS[doc.kind];
    t.truthy(model, `${file}: no model for kind ${doc.kind}`);
    if (!model) continue;
    t.is(doc.apiVersion, model.apiVersion, `${file}: ${doc.kind} ${doc.metadata?.name}`);
    t.notThrows(() => model.create(doc).validate(), `${file}: ${doc.kind} ${doc.metadata?.name}`);
  }
  const kinds = new Set(all.map(({ doc }) => doc.kind));
  for (const kind of ['StatefulSet', 'Deployment', 'Service', 'ConfigMap', 'PodDisruptionBudget', 'NetworkPolicy']) t.true(kinds.has(kind), `a ${kind}`);
});

test('the schema validation is real: a malformed StatefulSet is refused', (t) => {
  const sts = structuredClone(byKind('StatefulSet')[0]);
  sts.spec.replicas = 'three';
  t.throws(() => new StatefulSet(sts).validate());
});

test('kustomization.yaml lists every manifest file, and its generated Secret comes from files kept out of git', (t) => {
  const k = kustomization();
  t.deepEqual([...k.resources].sort(), yamlFiles());
  const generator = k.secretGenerator.find((g: any) => g.name === 'ha-dispatcher-tokens');
  t.truthy(generator);
  const keys = generator.files.map((f: string) => f.split('=')[0]).sort();
  t.deepEqual(keys, ['internal-token', 'rest-token', 'state-key', 'zookeeper-digest']);
  for (const f of generator.files as string[]) t.regex(f.split('=')[1], /^secrets\//);
  t.regex(fs.readFileSync(path.join(K8S_DIR, 'secrets', '.gitignore'), 'utf8'), /^\*$/m);
  // The README's one-time commands create every file the Secret is generated from.
  const readme = fs.readFileSync(path.join(K8S_DIR, 'README.md'), 'utf8');
  for (const f of generator.files as string[]) t.true(readme.includes(`> deploy/kubernetes/${f.split('=')[1]}`), `README.md creates ${f.split('=')[1]}`);
});

test('every reference resolves: Service and PodDisruptionBudget selectors, serviceName, ConfigMaps and Secrets of pods', (t) => {
  const pods = workloads();
  const generated = new Set(kustomization().secretGenerator.map((g: any) => g.name));
  const configMaps = new Set(byKind('ConfigMap').map((c) => c.metadata.name));
  for (const s of [...byKind('Service'), ...byKind('PodDisruptionBudget')]) {
    const selector = s.kind === 'Service' ? s.spec.selector : s.spec.selector.matchLabels;
    t.true(pods.some((w) => matches(selector, w.spec.template.metadata.labels)), `${s.kind} ${s.metadata.name} selects pods`);
  }
  for (const w of pods) {
    t.true(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${w.metadata.name} selects its own pods`);
    if (w.kind === 'StatefulSet') {
      const headless = byKind('Service').find((s) => s.metadata.name === w.spec.serviceName);
      t.is(headless?.spec.clusterIP, 'None', `${w.metadata.name}: serviceName is a headless Service`);
      t.true(headless?.spec.publishNotReadyAddresses, `${w.metadata.name}: names resolve before readiness`);
    }
    for (const v of w.spec.template.spec.volumes ?? []) {
      if (v.configMap) t.true(configMaps.has(v.configMap.name), `${w.metadata.name}: ConfigMap ${v.configMap.name}`);
      if (v.secret) t.true(generated.has(v.secret.secretName), `${w.metadata.name}: Secret ${v.secret.secretName}`);
    }
  }
  for (const np of byKind('NetworkPolicy')) {
    const selector = np.spec.podSelector.matchLabels;
    if (selector) t.true(pods.some((w) => matches(selector, w.spec.template.metadata.labels)), `NetworkPolicy ${np.metadata.name} selects pods`);
  }
});

test('every pod runs as non-root without privilege escalation, with resource requests and probes', (t) => {
  for (const w of workloads()) {
    const pod = w.spec.template.spec;
    t.true(pod.securityContext?.runAsNonRoot, `${w.metadata.name} runAsNonRoot`);
    t.not(pod.securityContext?.runAsUser, 0);
    t.false(pod.automountServiceAccountToken, `${w.metadata.name} mounts no API token`);
    for (const c of pod.containers) {
      t.false(c.securityContext?.allowPrivilegeEscalation, `${w.metadata.name}/${c.name}`);
      t.deepEqual(c.securityContext?.capabilities?.drop, ['ALL']);
      t.truthy(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${w.metadata.name}/${c.name} requests`);
      t.truthy(c.readinessProbe && c.livenessProbe, `${w.metadata.name}/${c.name} probes`);
    }
  }
  const replica = byKind('StatefulSet').find((s) => s.metadata.name === 'ha-dispatcher')!.spec.template.spec.containers[0];
  t.is(replica.readinessProbe.httpGet.path, '/readyz');
  t.is(replica.livenessProbe.httpGet.path, '/livez');
});

test('ZooKeeper: 3 servers with persistent volumes, a headless Service, myid from the ordinal, a quorum-keeping budget', (t) => {
  const zk = byKind('StatefulSet').find((s) => s.metadata.name === 'zookeeper')!;
  t.is(zk.spec.replicas, 3);
  t.is(zk.spec.podManagementPolicy, 'Parallel');
  t.deepEqual(zk.spec.volumeClaimTemplates.map((v: any) => v.metadata.name).sort(), ['data', 'datalog']);
  const container = zk.spec.template.spec.containers[0];
  const mounts = new Map(container.volumeMounts.map((m: any) => [m.name, m.mountPath]));
  t.is(mounts.get('data'), '/data');
  const servers = container.env.find((e: any) => e.name === 'ZOO_SERVERS').value.split(' ');
  t.deepEqual(servers, [0, 1, 2].map((i) => `server.${i + 1}=zookeeper-${i}.${zk.spec.serviceName}:2888:3888;2181`));
  t.is(byKind('PodDisruptionBudget').find((p) => p.metadata.name === 'zookeeper')!.spec.maxUnavailable, 1);
});

test('the ConfigMap config and the -D flags of replicas and TaskManagers pass the product validator; advertised URLs are stable names', (t) => {
  const configText = byKind('ConfigMap').find((c) => c.metadata.name === 'ha-dispatcher-config')!.data['ha-dispatcher.yaml'];
  const zk = byKind('StatefulSet').find((s) => s.metadata.name === 'zookeeper')!;
  const sample: Record<string, string> = { POD_NAMESPACE: 'ha-dispatcher', POD_IP: '10.1.2.3' };
  for (const w of workloads().filter((x) => x.metadata.labels?.['app.kubernetes.io/name'] === 'ha-dispatcher')) {
    const pod = w.spec.template.spec;
    const c = pod.containers[0];
    const podName = w.kind === 'StatefulSet' ? `${w.metadata.name}-0` : `${w.metadata.name}-7d9f8c-x2x4q`;
    const declared = new Set<string>(c.env.map((e: any) => e.name));
    // Kubernetes expands $(VAR) only for variables the container declares.
    const args = (c.args as string[]).map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, name: string) => {
      t.true(declared.has(name), `${w.metadata.name}: $(${name}) is declared`);
      return name === 'POD_NAME' ? podName : sample[name];
    }));
    const { verb, config, overrides } = processArgs(args);
    const configMount = c.volumeMounts.find((m: any) => pod.volumes.find((v: any) => v.name === m.name)?.configMap);
    t.is(config, `${configMount.mountPath}/ha-dispatcher.yaml`, `${w.metadata.name}: --config is the mounted ConfigMap`);
    // Every key of every Secret volume the container mounts, at <mountPath>/<key>.
    const mounted = new Map<string, string>();
    for (const m of c.volumeMounts) {
      const secretName = pod.volumes.find((v: any) => v.name === m.name)?.secret?.secretName;
      if (secretName === undefined) continue;
      const generator = kustomization().secretGenerator.find((g: any) => g.name === secretName);
      for (const f of generator.files as string[]) mounted.set(`${m.mountPath}/${f.split('=')[0]}`, secretFile(f.split('=')[0]));
    }

    const cfg = productConfig(configText, overrides, mounted);
    assertSecured(t, w.metadata.name, cfg, new Set(mounted.values()));
    for (const server of cfg['high-availability.zookeeper.quorum'].split(',')) {
      t.regex(server, new RegExp(`^zookeeper-[0-${zk.spec.replicas - 1}]\\.${zk.spec.serviceName}:2181$`));
    }
    if (verb === 'dispatcher') {
      t.is(w.kind, 'StatefulSet');
      t.is(cfg['replica.id'], podName);
      const url = new URL(cfg['rest.advertised-url']!);
      t.is(url.hostname, `${podName}.${w.spec.serviceName}.ha-dispatcher.svc`);
      t.is(Number(url.port), cfg['rest.port']);
      t.is(c.ports.find((p: any) => p.name === 'rest').containerPort, cfg['rest.port']);
    } else {
      t.is(verb, 'taskmanager');
      t.is(cfg['taskmanager.id'], podName);
      t.is(cfg['taskmanager.advertised-url'], `http://10.1.2.3:${cfg['taskmanager.rpc-port']}`);
      t.is(c.ports.find((p: any) => p.name === 'rpc').containerPort, cfg['taskmanager.rpc-port']);
    }
  }
});

test('NetworkPolicies: default deny; clients reach only the REST port; only replicas reach TaskManagers; only this cluster reaches ZooKeeper', (t) => {
  const np = new Map(byKind('NetworkPolicy').map((p) => [p.metadata.name, p.spec]));
  t.deepEqual(np.get('default-deny-ingress'), { podSelector: {}, policyTypes: ['Ingress'] });
  t.deepEqual(np.get('ha-dispatcher-replica-ingress').ingress, [{ ports: [{ protocol: 'TCP', port: 8081 }] }]);
  const tm = np.get('ha-dispatcher-taskmanager-ingress').ingress;
  t.is(tm.length, 1);
  t.is(tm[0].from[0].podSelector.matchLabels['app.kubernetes.io/component'], 'replica');
  for (const rule of np.get('zookeeper-ingress').ingress) {
    t.true(rule.from.every((f: any) => f.podSelector && !f.namespaceSelector && !f.ipBlock), 'pods of this namespace only');
  }
});

// ---------------------------------------------------------------- Docker Compose

const DOCKER_DIR = path.join(ROOT, 'docker');
const compose = (): any => YAML.parse(fs.readFileSync(path.join(DOCKER_DIR, 'compose.yaml'), 'utf8'), { merge: true });
const DISPATCHER_IMAGE = 'ha-dispatcher:local';

/** The subset of the Compose specification this project uses; anything else is a mistake here. */
const COMPOSE_SCHEMA = {
  type: 'object',
  required: ['services', 'volumes', 'secrets'],
  additionalProperties: false,
  patternProperties: { '^x-': {} },
  properties: {
    name: { type: 'string' },
    services: {
      type: 'object', minProperties: 1,
      additionalProperties: {
        type: 'object', required: ['image', 'healthcheck'], additionalProperties: false,
        properties: {
          image: { type: 'string', minLength: 1 },
          build: { type: 'object', required: ['context'], properties: { context: { type: 'string' }, dockerfile: { type: 'string' } }, additionalProperties: false },
          hostname: { type: 'string' },
          restart: { enum: ['no', 'always', 'on-failure', 'unless-stopped'] },
          init: { type: 'boolean' },
          stop_grace_period: { type: 'string', pattern: '^\\d+(ms|s|m)$' },
          command: { type: 'array', items: { type: 'string' } },
          environment: { type: 'object', additionalProperties: { type: 'string' } },
          ports: { type: 'array', items: { type: 'string', pattern: '^(\\d{1,3}\\.){3}\\d{1,3}:\\d+:\\d+$' } },
          volumes: { type: 'array', items: { type: 'string', pattern: '^[^:]+:/[^:]*(:ro)?$' } },
          secrets: { type: 'array', items: { type: 'string' } },
          healthcheck: {
            type: 'object', required: ['test', 'interval', 'timeout', 'retries'], additionalProperties: false,
            properties: {
              test: { type: 'array', minItems: 2, items: [{ enum: ['CMD', 'CMD-SHELL'] }], additionalItems: { type: 'string' } },
              interval: { type: 'string', pattern: '^\\d+(ms|s|m)$' },
              timeout: { type: 'string', pattern: '^\\d+(ms|s|m)$' },
              start_period: { type: 'string', pattern: '^\\d+(ms|s|m)$' },
              retries: { type: 'integer', minimum: 1 },
            },
          },
          depends_on: {
            type: 'object',
            additionalProperties: {
              type: 'object', required: ['condition'], additionalProperties: false,
              properties: { condition: { enum: ['service_started', 'service_healthy', 'service_completed_successfully'] } },
            },
          },
        },
      },
    },
    volumes: { type: 'object', additionalProperties: { type: 'object', maxProperties: 0 } },
    secrets: { type: 'object', additionalProperties: { type: 'object', required: ['file'], additionalProperties: false, properties: { file: { type: 'string' } } } },
  },
};

test('compose.yaml validates against the JSON Schema of the Compose subset it uses', (t) => {
  const validate = new Ajv({ allErrors: true, strict: true, strictTuples: false }).compile(COMPOSE_SCHEMA);
  const ok = validate(compose());
  t.true(ok, JSON.stringify(validate.errors, null, 1));
  const broken = compose();
  broken.services.replica1.depends_on.zk1 = { condition: 'service_ready' };
  t.false(validate(broken), 'the schema refuses an unknown depends_on condition');
});

test('compose invariants: loopback-only ports, a healthcheck everywhere, readiness-gated start order, named volumes and secrets that exist', (t) => {
  const c = compose();
  const services: Record<string, any> = c.services;
  const published = Object.entries(services).filter(([, s]) => s.ports);
  t.deepEqual(published.map(([name]) => name), ['haproxy'], 'only the load balancer is published');
  for (const [name, s] of published) for (const p of s.ports as string[]) t.regex(p, /^127\.0\.0\.1:/, `${name} publishes ${p} on loopback only`);
  for (const [name, s] of Object.entries(services)) {
    t.truthy(s.healthcheck?.test, `${name} has a healthcheck`);
    t.true(s.init, `${name} runs under an init`);
    for (const [dep, d] of Object.entries<any>(s.depends_on ?? {})) {
      t.is(d.condition, 'service_healthy', `${name} → ${dep}`);
      t.truthy(services[dep]?.healthcheck, `${name} depends on ${dep}, which has a healthcheck`);
    }
    for (const v of s.volumes ?? []) {
      const source = v.split(':')[0];
      if (!source.startsWith('.')) t.true(source in c.volumes, `${name}: volume ${source} is declared`);
      else t.true(fs.existsSync(path.resolve(DOCKER_DIR, source)), `${name}: ${source} exists`);
    }
    for (const secret of s.secrets ?? []) t.true(secret in c.secrets, `${name}: secret ${secret} is declared`);
  }
  for (const zk of ['zk1', 'zk2', 'zk3']) {
    t.true(services[zk].volumes.some((v: string) => v.endsWith(':/data')), `${zk} keeps its data in a named volume`);
    t.regex(services[zk].healthcheck.test.join(' '), /srvr|ruok/);
  }
  for (const name of ['replica1', 'replica2', 'replica3']) t.regex(services[name].healthcheck.test.join(' '), /\/readyz$/);
});

test('compose: every replica and TaskManager config passes the product validator, with service-name advertised URLs and tokens', (t) => {
  const c = compose();
  const configText = fs.readFileSync(path.join(DOCKER_DIR, 'ha-dispatcher.yaml'), 'utf8');
  const dockerfile = fs.readFileSync(path.join(DOCKER_DIR, 'Dockerfile'), 'utf8');
  for (const [name, secret] of Object.entries<any>(c.secrets)) t.regex(secret.file, /^\.\/secrets\/[a-z-]+$/, `secret ${name} is a file of docker/secrets/`);
  t.regex(fs.readFileSync(path.join(DOCKER_DIR, 'secrets', '.gitignore'), 'utf8'), /^\*$/m);
  // docker/README.md's one-time commands create every secret file.
  const readme = fs.readFileSync(path.join(DOCKER_DIR, 'README.md'), 'utf8');
  for (const secret of Object.values<any>(c.secrets)) t.true(readme.includes(`> docker/${secret.file.slice(2)}`), `docker/README.md creates ${secret.file}`);
  const roles = { dispatcher: 0, taskmanager: 0 };
  for (const [name, s] of Object.entries<any>(c.services)) {
    if (s.image !== DISPATCHER_IMAGE) continue;
    const { verb, config, overrides } = processArgs(s.command);
    t.is(config, '/etc/ha-dispatcher/ha-dispatcher.yaml');
    t.true(dockerfile.includes(`COPY docker/ha-dispatcher.yaml ${config}`), 'the image holds the config file');
    // Compose mounts a service's secrets at /run/secrets/<name>: only its own.
    const mounted = new Map<string, string>((s.secrets ?? []).map((secret: string) => [`/run/secrets/${secret}`, secretFile(secret)]));
    const cfg = productConfig(configText, overrides, mounted, s.environment ?? {});
    assertSecured(t, name, cfg, new Set(mounted.values()));
    t.deepEqual([...s.secrets].sort(), ['internal-token', 'rest-token', 'state-key', 'zookeeper-digest'], `${name} mounts both tokens, the ZooKeeper identity and the state key`);
    for (const server of cfg['high-availability.zookeeper.quorum'].split(',')) t.true(server.split(':')[0] in c.services, `${name}: ZooKeeper ${server} is a service`);
    if (verb === 'dispatcher') {
      roles.dispatcher++;
      t.is(cfg['replica.id'], name);
      t.is(cfg['rest.advertised-url'], `http://${name}:${cfg['rest.port']}`);
    } else {
      t.is(verb, 'taskmanager');
      roles.taskmanager++;
      t.is(cfg['taskmanager.id'], name);
      t.is(cfg['taskmanager.advertised-url'], `http://${name}:${cfg['taskmanager.rpc-port']}`);
      t.true(s.healthcheck.test.join(' ').includes(`:${cfg['taskmanager.rpc-port']}/livez`));
    }
  }
  t.deepEqual(roles, { dispatcher: 3, taskmanager: 2 });
  const haproxy = c.services.haproxy.environment;
  t.deepEqual([haproxy.REPLICA1, haproxy.REPLICA2, haproxy.REPLICA3], ['replica1:8081', 'replica2:8081', 'replica3:8081']);
});

test('the image is non-root, runs under tini, and holds the tools the runbooks use', (t) => {
  const dockerfile = fs.readFileSync(path.join(DOCKER_DIR, 'Dockerfile'), 'utf8');
  const user = /^USER\s+(\S+)/m.exec(dockerfile.split(/^FROM /m).pop()!)?.[1];
  t.truthy(user);
  t.not(user!.split(':')[0], 'root');
  t.not(user!.split(':')[0], '0');
  t.regex(dockerfile, /^ENTRYPOINT \["\/usr\/bin\/tini", "--"/m);
  const install = /apt-get install[^\n]*(?:\\\n[^\n]*)*/g;
  const packages = (dockerfile.split(/^FROM /m).pop()!.match(install) ?? []).join(' ');
  for (const tool of ['tini', 'curl', 'jq', 'netcat-openbsd', 'zookeeper']) t.regex(packages, new RegExp(`\\b${tool}\\b`), tool);
});

test('runbooks name only services and pods that exist', (t) => {
  const services = new Set(Object.keys(compose().services));
  const pods = new Set(workloads().filter((w) => w.kind === 'StatefulSet').flatMap((w) => Array.from({ length: w.spec.replicas }, (_, i) => `${w.metadata.name}-${i}`)));
  const runbooks = path.join(ROOT, 'runbooks');
  let checked = 0;
  for (const file of fs.readdirSync(runbooks).filter((f) => f.endsWith('.md'))) {
    const text = fs.readFileSync(path.join(runbooks, file), 'utf8');
    for (const m of text.matchAll(/docker compose(?: -f \S+)? exec (?:-\S+ )*([a-z0-9-]+)/g)) { checked++; t.true(services.has(m[1]), `${file}: compose service ${m[1]}`); }
    for (const m of text.matchAll(/kubectl(?: -n \S+)? exec (?:-\S+ )*([a-z0-9-]+)/g)) { checked++; t.true(pods.has(m[1]), `${file}: pod ${m[1]}`); }
  }
  t.true(checked > 5, `only ${checked} exec commands found`);
});

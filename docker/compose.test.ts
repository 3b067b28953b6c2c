// Keeps docker/compose.yaml honest without a Docker engine: parses it and checks its wiring against the config schema,
// the Prometheus configs and the Grafana provisioning files. Each test lists every problem it finds, one line each.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConfigError, ENV_VARIABLES, loadConfig, type Config } from '../common/config.ts';
import { databaseUrl, type DatabaseJob } from '../common/db.ts';
import { NODE_FLAGS, PROCESS_ENV } from '../stack/supervisor.ts';

const DOCKER_DIR = dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = resolve(DOCKER_DIR, '..');
const COMPOSE_FILE = join(DOCKER_DIR, 'compose.yaml');
/** The Dockerfile's ENTRYPOINT (exec form). */
const IMAGE_ENTRYPOINT: string[] = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(readFileSync(join(DOCKER_DIR, 'Dockerfile'), 'utf8'))![1]!);
const PROMETHEUS_DIR = join(DOCKER_DIR, 'prometheus');

/** The long-running workers: compose service -> CLI subcommand, the variable holding its /metrics port, Prometheus job. */
const WORKERS = {
  ingestion: { command: 'ingest', portVariable: 'INGESTION_HTTP_PORT', job: 'ingestion', configPort: (c: Config) => c.http.ports.ingestion },
  writer: { command: 'write', portVariable: 'WRITER_HTTP_PORT', job: 'writer', configPort: (c: Config) => c.http.ports.writer },
  metrics: { command: 'metrics', portVariable: 'METRICS_HTTP_PORT', job: 'metrics', configPort: (c: Config) => c.http.ports.metrics },
} as const;
type WorkerName = keyof typeof WORKERS;
const WORKER_NAMES = Object.keys(WORKERS) as WorkerName[];
/** Every service that runs the worker image and so reads the config schema. */
const IMAGE_SERVICES = ['migrate', ...WORKER_NAMES] as const;
const EXPECTED_SERVICES = ['kafka', 'timescaledb', 'migrate', ...WORKER_NAMES, 'prometheus', 'grafana', 'mailpit'];

// ------------------------------------------------------------------------------------------------ compose model ---

interface Service {
  image?: string;
  hostname?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  env_file?: string | (string | { path: string; required?: boolean })[];
  ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
  expose?: (string | number)[];
  volumes?: (string | { type?: string; source?: string; target: string; read_only?: boolean })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  restart?: string;
}

interface ComposeFile {
  name?: string;
  version?: unknown;
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

function readYaml(path: string): unknown {
  // merge: true resolves `<<: *worker` as Compose does.
  return parse(readFileSync(path, 'utf8'), { merge: true });
}

const compose = readYaml(COMPOSE_FILE) as ComposeFile;
const services = compose.services ?? {};

function service(name: string): Service {
  const s = services[name];
  if (!s) throw new Error(`compose.yaml has no service '${name}' (services: ${Object.keys(services).join(', ')})`);
  return s;
}

/**
 * Compose variable interpolation, enough for this file: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
 * ${VAR:?message}, ${VAR?message}, ${VAR:+alternative}. With an empty `vars` every default applies.
 */
function interpolate(value: string, vars: Readonly<Record<string, string>> = {}): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, name: string | undefined, op: string | undefined, arg: string | undefined, bare: string | undefined) => {
      if (match === '$$') return '$';
      if (bare !== undefined) return vars[bare] ?? '';
      const v = name === undefined ? undefined : vars[name];
      const missing = v === undefined || (op !== undefined && op.startsWith(':') && v === '');
      switch (op) {
        case ':-':
        case '-':
          return missing ? interpolate(arg ?? '', vars) : (v ?? '');
        case ':?':
        case '?':
          if (missing) throw new Error(`\${${name}} is required: ${arg}`);
          return v ?? '';
        case ':+':
        case '+':
          return missing ? '' : interpolate(arg ?? '', vars);
        default:
          return v ?? '';
      }
    },
  );
}

/** A service's environment as written (list or mapping form), values uninterpolated. */
function rawEnvironment(s: Service): Record<string, string> {
  const env: Record<string, string> = {};
  if (Array.isArray(s.environment)) {
    for (const entry of s.environment) {
      const i = entry.indexOf('=');
      if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1);
    }
  } else {
    for (const [k, v] of Object.entries(s.environment ?? {})) if (v !== null) env[k] = String(v);
  }
  return env;
}

/** What a user must set on the host before `docker compose up` (the file's ${X:?...} variables); nothing else. */
const REQUIRED_HOST_VARS = {
  GRAFANA_ADMIN_PASSWORD: 'set-by-the-user',
  POSTGRES_PASSWORD: 'db-by-the-user',
  GRAFANA_DB_PASSWORD: 'reader-by-the-user',
  WRITER_DB_PASSWORD: 'writer-by-the-user',
  METRICS_DB_PASSWORD: 'metrics-by-the-user',
};
/** Who each worker-image service logs in to the database as: only migrate holds the owner's password. */
const DATABASE_LOGIN: Record<(typeof IMAGE_SERVICES)[number], 'owner' | DatabaseJob | 'none'> = { migrate: 'owner', ingestion: 'none', writer: 'writer', metrics: 'metrics' };

/** The environment a container gets when only the required variables are set: every ${X:-default} takes its default. */
function environment(s: Service): Record<string, string> {
  return Object.fromEntries(Object.entries(rawEnvironment(s)).map(([k, v]) => [k, interpolate(v, REQUIRED_HOST_VARS)]));
}

function commandOf(s: Service): string[] {
  return typeof s.command === 'string' ? s.command.split(/\s+/).filter(Boolean) : (s.command ?? []);
}

interface PortMapping {
  hostIp?: string;
  published?: number;
  target: number;
}

function portMappings(s: Service): PortMapping[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') {
      return { hostIp: p.host_ip, published: p.published === undefined ? undefined : Number(p.published), target: Number(p.target) };
    }
    const parts = String(p).split('/')[0]!.split(':');
    const target = Number(parts.pop());
    const published = parts.length > 0 ? Number(parts.pop()) : undefined;
    return { hostIp: parts.length > 0 ? parts.join(':') : undefined, published, target };
  });
}

interface Mount {
  type: 'bind' | 'volume';
  source: string;
  target: string;
  readOnly: boolean;
}

function mounts(s: Service): Mount[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'object') {
      const source = v.source ?? '';
      return { type: v.type === 'bind' ? 'bind' : 'volume', source, target: v.target, readOnly: v.read_only === true };
    }
    const [source = '', target = '', mode = ''] = v.split(':');
    const isPath = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
    return { type: isPath ? 'bind' : 'volume', source, target, readOnly: mode.split(',').includes('ro') };
  });
}

/** Where a container path comes from on this machine, if a bind mount provides it. */
function hostPathOf(s: Service, containerPath: string): string | undefined {
  const m = mounts(s)
    .filter((x) => x.type === 'bind' && (containerPath === x.target || containerPath.startsWith(`${x.target}/`)))
    .sort((a, b) => b.target.length - a.target.length)[0];
  return m ? join(resolve(DOCKER_DIR, m.source), containerPath.slice(m.target.length)) : undefined;
}

function dependsOn(s: Service): Record<string, string> {
  if (Array.isArray(s.depends_on)) return Object.fromEntries(s.depends_on.map((d) => [d, 'service_started']));
  return Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([d, v]) => [d, v?.condition ?? 'service_started']));
}

function flagValue(args: string[], flag: string): string | undefined {
  const hit = args.find((a) => a.startsWith(`${flag}=`));
  return hit?.slice(flag.length + 1);
}

const portOf = (hostPort: string) => Number(hostPort.slice(hostPort.lastIndexOf(':') + 1));

/** Kafka listeners as `NAME://host:port`. */
function kafkaListeners(value: string | undefined): { name: string; host: string; port: number }[] {
  return (value ?? '')
    .split(',')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^([A-Za-z0-9_]+):\/\/([^:]*):(\d+)$/.exec(l);
      return m ? { name: m[1]!, host: m[2]!, port: Number(m[3]) } : { name: l, host: '', port: NaN };
    });
}

/**
 * The ports a service listens on inside the network, read from its own configuration where the image allows it
 * (Kafka listeners, Mailpit bind addresses, Prometheus and Grafana flags, the workers' *_HTTP_PORT).
 */
function listenPorts(name: string): number[] {
  const s = service(name);
  const env = environment(s);
  if (name === 'kafka') return kafkaListeners(env.KAFKA_LISTENERS).map((l) => l.port);
  if (name === 'timescaledb') return [Number(env.PGPORT ?? 5432)];
  if (name === 'mailpit') return [portOf(env.MP_SMTP_BIND_ADDR ?? '0.0.0.0:1025'), portOf(env.MP_UI_BIND_ADDR ?? '0.0.0.0:8025')];
  if (name === 'prometheus') return [portOf(flagValue(commandOf(s), '--web.listen-address') ?? ':9090')];
  if (name === 'grafana') return [Number(env.GF_SERVER_HTTP_PORT ?? 3000)];
  if (name in WORKERS) return [Number(env[WORKERS[name as WorkerName].portVariable])];
  return [];
}

/** The compose service a hostname reaches inside the network: its service name or its `hostname:`. */
function serviceForHost(host: string): string | undefined {
  return Object.entries(services).find(([n, s]) => n === host || s.hostname === host)?.[0];
}

/** Problems with `host:port` as an address inside the compose network; [] when a service listens there. */
function addressProblems(what: string, host: string, port: number): string[] {
  const target = serviceForHost(host);
  if (!target) return [`${what} points at ${host}:${port}, but no service is named ${host} (services: ${Object.keys(services).join(', ')})`];
  const ports = listenPorts(target);
  if (!ports.includes(port)) return [`${what} points at ${host}:${port}, but service ${target} listens on ${ports.join(', ') || 'no known port'}`];
  return [];
}

/** Loads a worker service's environment through the real config schema. */
function workerConfig(name: string): Config {
  try {
    return loadConfig(environment(service(name)));
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`service ${name}: its environment does not pass the config schema.\n${err.message}`);
    throw err;
  }
}

// ------------------------------------------------------------------------------------------- prometheus model ---

interface PrometheusConfig {
  global?: Record<string, unknown>;
  rule_files?: string[];
  scrape_configs?: { job_name: string; static_configs?: { targets?: string[] }[] }[];
}

const readPrometheus = (file: string) => readYaml(join(PROMETHEUS_DIR, file)) as PrometheusConfig;

function jobTargets(p: PrometheusConfig, job: string): string[] | undefined {
  const sc = p.scrape_configs?.find((j) => j.job_name === job);
  return sc ? (sc.static_configs ?? []).flatMap((c) => c.targets ?? []) : undefined;
}

/** Files a rule_files pattern matches, relative to the config's folder (`*` in the last segment only). */
function ruleFilesMatching(configDir: string, pattern: string): string[] {
  const full = resolve(configDir, pattern);
  const dir = dirname(full);
  const base = full.slice(dir.length + 1);
  if (!existsSync(dir)) return [];
  const re = new RegExp(`^${base.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  return readdirSync(dir)
    .filter((f) => re.test(f))
    .map((f) => join(dir, f));
}

// ---------------------------------------------------------------------------------------------------- tests ---

describe('docker/compose.yaml', () => {
  it('is a Compose spec file for project tickwatch with the whole stack', () => {
    const problems: string[] = [];
    if ('version' in compose) problems.push('drop the obsolete top-level `version:` key (Compose spec)');
    if (compose.name !== 'tickwatch') problems.push(`project name is ${JSON.stringify(compose.name)}, expected "tickwatch"`);
    for (const name of EXPECTED_SERVICES) if (!services[name]) problems.push(`service ${name} is missing`);
    for (const [name, s] of Object.entries(services)) {
      if (!s.image && !s.build) problems.push(`service ${name} has neither image nor build`);
      if (s.image && !s.build && (!s.image.includes(':') || s.image.endsWith(':latest')))
        problems.push(`service ${name}: pin the image version (${s.image})`);
    }
    expect(problems).toEqual([]);
  });

  it('pins the TimescaleDB version that CI builds and tests natively (the newest vendored source)', () => {
    const image = String(service('timescaledb').image);
    expect(image).toMatch(/^timescale\/timescaledb:\d+\.\d+\.\d+-pg15$/);
    const vendor = join(REPO_ROOT, '..', 'shared', 'vendor');
    const versions = existsSync(vendor)
      ? readdirSync(vendor).flatMap((f) => /^timescaledb-(\d+\.\d+\.\d+)\.tar\.gz$/.exec(f)?.slice(1) ?? [])
      : [];
    if (versions.length === 0) return console.warn(`[skipped] no vendored TimescaleDB source in ${vendor}`);
    const newest = versions.sort((a, b) => a.localeCompare(b, 'en', { numeric: true })).at(-1);
    expect(image).toBe(`timescale/timescaledb:${newest}-pg15`);
  });

  it('sets on the worker services only variables of the config schema (and the process environment the supervisor sets)', () => {
    const known = new Set<string>([...ENV_VARIABLES, ...Object.values(PROCESS_ENV).flatMap((e) => Object.keys(e))]);
    const problems = IMAGE_SERVICES.flatMap((name) =>
      Object.keys(rawEnvironment(service(name)))
        .filter((k) => !known.has(k))
        .map((k) => `service ${name} sets ${k}, which common/config.ts envSchema does not define (a typo, or a variable the workers never read)`),
    );
    expect(problems).toEqual([]);
  });

  it.each(IMAGE_SERVICES)('gives %s an environment that passes loadConfig', (name) => {
    // Throws the ConfigError text, which names every bad variable.
    expect(workerConfig(name)).toBeTypeOf('object');
  });

  it('runs each worker image service with its subcommand, its optional .env and a sane restart policy', () => {
    const problems: string[] = [];
    const expected: Record<string, string> = { migrate: 'migrate', ...Object.fromEntries(WORKER_NAMES.map((w) => [w, WORKERS[w].command])) };
    for (const name of IMAGE_SERVICES) {
      const s = service(name);
      const cmd = commandOf(s);
      if (cmd[0] !== expected[name]) problems.push(`service ${name} runs ${JSON.stringify(cmd)}, expected the ${expected[name]} subcommand first`);
      const envFiles = Array.isArray(s.env_file) ? s.env_file : s.env_file === undefined ? [] : [s.env_file];
      const dotEnv = envFiles.find((f) => resolve(DOCKER_DIR, typeof f === 'string' ? f : f.path) === join(REPO_ROOT, '.env'));
      if (!dotEnv) problems.push(`service ${name} does not read the repository's .env (env_file: ../.env)`);
      else if (typeof dotEnv === 'string' || dotEnv.required !== false) problems.push(`service ${name}: the .env env_file must be \`required: false\` (it is optional)`);
      // The image's entrypoint, with the V8 flags the native supervisor gives the same subcommand.
      const flags = NODE_FLAGS[expected[name]!] ?? [];
      const entrypoint = s.entrypoint === undefined ? IMAGE_ENTRYPOINT : typeof s.entrypoint === 'string' ? s.entrypoint.split(/\s+/) : s.entrypoint;
      const wanted = [IMAGE_ENTRYPOINT[0]!, ...flags, ...IMAGE_ENTRYPOINT.slice(1)];
      if (JSON.stringify(entrypoint) !== JSON.stringify(wanted)) problems.push(`service ${name} starts ${JSON.stringify(entrypoint)}, expected ${JSON.stringify(wanted)}`);
      // And the environment the supervisor adds for the same subcommand.
      for (const [k, v] of Object.entries(PROCESS_ENV[expected[name]!] ?? {})) {
        const set = rawEnvironment(s)[k];
        if (set !== v) problems.push(`service ${name} sets ${k}=${set ?? '(unset)'}, expected ${v} (stack/supervisor.ts PROCESS_ENV)`);
      }
      const restart = name === 'migrate' ? 'no' : 'unless-stopped';
      if (s.restart !== restart) problems.push(`service ${name} has restart ${JSON.stringify(s.restart)}, expected "${restart}"`);
    }
    expect(problems).toEqual([]);
  });

  it('points KAFKA_BROKERS, DATABASE_URL and SMTP_HOST/SMTP_PORT at services listening there', () => {
    const problems: string[] = [];
    const kafka = environment(service('kafka'));
    const advertised = kafkaListeners(kafka.KAFKA_ADVERTISED_LISTENERS);
    const listening = kafkaListeners(kafka.KAFKA_LISTENERS);
    const db = environment(service('timescaledb'));
    for (const name of IMAGE_SERVICES) {
      const c = workerConfig(name);
      for (const broker of c.kafka.brokers) {
        const [host = '', port = ''] = broker.split(':');
        const what = `service ${name}: KAFKA_BROKERS`;
        const p = addressProblems(what, host, Number(port));
        problems.push(...p);
        if (p.length > 0 || serviceForHost(host) !== 'kafka') continue;
        // Clients reconnect to what the broker advertises: the workers' broker must be advertised as itself.
        const adv = advertised.find((l) => l.host === host && l.port === Number(port));
        if (!adv) problems.push(`${what} is ${broker}, but kafka advertises only ${kafka.KAFKA_ADVERTISED_LISTENERS}`);
        else if (!listening.some((l) => l.name === adv.name && l.port === adv.port))
          problems.push(`${what}: kafka advertises ${adv.name}://${broker} but KAFKA_LISTENERS binds ${adv.name} elsewhere (${kafka.KAFKA_LISTENERS})`);
      }
      const login = DATABASE_LOGIN[name];
      const raw = rawEnvironment(service(name));
      if (login === 'none') {
        if (raw.DATABASE_URL !== undefined || Object.keys(raw).some((k) => k.endsWith('_PASSWORD'))) problems.push(`service ${name} needs no database, yet gets database credentials`);
      } else {
        const url = new URL(databaseUrl(c, login === 'owner' ? undefined : login));
        problems.push(...addressProblems(`service ${name}: DATABASE_URL`, url.hostname, Number(url.port || 5432)));
        const migrateEnv = environment(service('migrate'));
        const want =
          login === 'owner'
            ? { user: db.POSTGRES_USER, password: db.POSTGRES_PASSWORD, database: db.POSTGRES_DB }
            : login === 'writer'
              ? { user: migrateEnv.WRITER_DB_USER, password: migrateEnv.WRITER_DB_PASSWORD, database: db.POSTGRES_DB }
              : { user: migrateEnv.METRICS_DB_USER, password: migrateEnv.METRICS_DB_PASSWORD, database: db.POSTGRES_DB };
        const got = { user: decodeURIComponent(url.username), password: decodeURIComponent(url.password), database: url.pathname.slice(1) };
        for (const k of ['user', 'password', 'database'] as const)
          if (got[k] !== want[k]) problems.push(`service ${name}: logs in with ${k} ${got[k]}, but ${login === 'owner' ? 'timescaledb creates' : 'migrate creates'} ${want[k]}`);
        if (login !== 'owner' && (raw.DATABASE_URL ?? '').includes('POSTGRES_PASSWORD')) problems.push(`service ${name} gets the owner's password`);
      }
      problems.push(...addressProblems(`service ${name}: SMTP_HOST:SMTP_PORT`, c.smtp.host, c.smtp.port));
    }
    expect(problems).toEqual([]);
  });

  it('exposes and health-checks each worker on its *_HTTP_PORT, which Prometheus scrapes under the worker name', () => {
    const problems: string[] = [];
    const prom = readPrometheus('prometheus.yml');
    for (const name of WORKER_NAMES) {
      const w = WORKERS[name];
      const s = service(name);
      const port = w.configPort(workerConfig(name));
      if (!environment(s)[w.portVariable]) problems.push(`service ${name} does not set ${w.portVariable} (its /metrics port)`);
      if (!(s.expose ?? []).map(Number).includes(port)) problems.push(`service ${name} does not expose ${port} (${w.portVariable})`);
      const test = [s.healthcheck?.test ?? []].flat().join(' ');
      if (s.healthcheck && !test.includes(`:${port}/`)) problems.push(`service ${name}: healthcheck does not probe port ${port}: ${test}`);
      const targets = jobTargets(prom, w.job);
      if (!targets) problems.push(`prometheus.yml has no job ${w.job} for service ${name}`);
      else if (targets.join(',') !== `${name}:${port}`)
        problems.push(`prometheus.yml job ${w.job} scrapes ${targets.join(', ')}, but service ${name} serves /metrics on ${name}:${port}`);
    }
    // And nothing scrapes an address where no service listens.
    for (const job of prom.scrape_configs ?? []) {
      for (const t of jobTargets(prom, job.job_name) ?? []) {
        const host = t.slice(0, t.lastIndexOf(':'));
        if (host === 'localhost' || host === '127.0.0.1') {
          if (job.job_name !== 'prometheus') problems.push(`prometheus.yml job ${job.job_name} scrapes ${t}: inside Docker that is Prometheus itself`);
          else problems.push(...addressProblems(`prometheus.yml job ${job.job_name}`, 'prometheus', portOf(t)));
        } else problems.push(...addressProblems(`prometheus.yml job ${job.job_name}`, host, portOf(t)));
      }
    }
    expect(problems).toEqual([]);
  });

  it('publishes and exposes only ports the services listen on, each host port once', () => {
    const problems: string[] = [];
    const published = new Map<number, string>();
    for (const [name, s] of Object.entries(services)) {
      const ports = listenPorts(name);
      if (ports.length === 0) continue;
      for (const p of portMappings(s)) {
        if (!ports.includes(p.target)) problems.push(`service ${name} publishes container port ${p.target}, but listens on ${ports.join(', ')}`);
        if (p.published !== undefined) {
          const other = published.get(p.published);
          if (other) problems.push(`host port ${p.published} is published by both ${other} and ${name}`);
          published.set(p.published, name);
        }
      }
      for (const e of s.expose ?? []) if (!ports.includes(Number(e))) problems.push(`service ${name} exposes ${e}, but listens on ${ports.join(', ')}`);
    }
    const external = kafkaListeners(environment(service('kafka')).KAFKA_ADVERTISED_LISTENERS).filter((l) => l.host === 'localhost');
    for (const l of external)
      if (!portMappings(service('kafka')).some((p) => p.published === l.port && p.target === l.port))
        problems.push(`kafka advertises localhost:${l.port} for host tools but does not publish ${l.port}:${l.port}`);
    if (external.length === 0) problems.push('kafka advertises no localhost listener for tools on the host');
    expect(problems).toEqual([]);
  });

  it('names only existing services in depends_on, with conditions those services can meet', () => {
    const problems: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      for (const [dep, condition] of Object.entries(dependsOn(s))) {
        const d = services[dep];
        if (!d) {
          problems.push(`service ${name} depends on ${dep}, which is not a service`);
          continue;
        }
        if (condition === 'service_healthy' && (!d.healthcheck || d.healthcheck.disable))
          problems.push(`service ${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
        if (condition === 'service_completed_successfully' && d.restart !== 'no')
          problems.push(`service ${name} waits for ${dep} to complete, but ${dep} restarts (${d.restart})`);
        if (!['service_started', 'service_healthy', 'service_completed_successfully'].includes(condition))
          problems.push(`service ${name}: unknown depends_on condition ${condition}`);
      }
    }
    for (const name of WORKER_NAMES) {
      const deps = dependsOn(service(name));
      const want = { kafka: 'service_healthy', timescaledb: 'service_healthy', migrate: 'service_completed_successfully' };
      for (const [dep, condition] of Object.entries(want))
        if (deps[dep] !== condition) problems.push(`service ${name} should wait for ${dep} (${condition}), has ${deps[dep] ?? 'nothing'}`);
    }
    expect(problems).toEqual([]);
  });

  it('builds from contexts that contain their Dockerfile, and mounts only what exists', () => {
    const problems: string[] = [];
    for (const [name, s] of Object.entries(services)) {
      if (s.build !== undefined) {
        const context = resolve(DOCKER_DIR, typeof s.build === 'string' ? s.build : (s.build.context ?? '.'));
        const dockerfile = resolve(context, typeof s.build === 'string' ? 'Dockerfile' : (s.build.dockerfile ?? 'Dockerfile'));
        if (!existsSync(dockerfile)) problems.push(`service ${name}: build context ${context} has no ${relative(context, dockerfile)}`);
        else if (!dockerfile.startsWith(context + sep)) problems.push(`service ${name}: Dockerfile ${dockerfile} is outside its context ${context}`);
        else {
          const text = readFileSync(dockerfile, 'utf8');
          const entry = /^ENTRYPOINT\s+(\[.*\])/m.exec(text);
          const script = entry ? (JSON.parse(entry[1]!) as string[]).find((a) => /\.[jt]s$/.test(a)) : undefined;
          // A compiled entry point (dist/...js) is built in the image from its TypeScript source in the context.
          const source = script?.replace(/^dist\//, '').replace(/\.js$/, '.ts');
          if (!source || !existsSync(join(context, source))) problems.push(`service ${name}: the Dockerfile's ENTRYPOINT does not run a script of the context (${entry?.[1]})`);
          else if (script !== source && !/^RUN npm run build$/m.test(text)) problems.push(`service ${name}: the Dockerfile runs ${script} but does not build it (RUN npm run build)`);
          if (!/^USER\s+(?!root\b|0\b)\S+/m.test(text)) problems.push(`service ${name}: the Dockerfile does not switch to a non-root USER`);
          const ignore = existsSync(join(context, '.dockerignore')) ? readFileSync(join(context, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()) : [];
          for (const must of ['node_modules', '.git', '.env', '**/.env'])
            if (!ignore.includes(must)) problems.push(`service ${name}: ${join(context, '.dockerignore')} does not exclude ${must}`);
        }
      }
      for (const m of mounts(s)) {
        if (m.type === 'bind' && !existsSync(resolve(DOCKER_DIR, m.source))) problems.push(`service ${name} mounts ${m.source}, which does not exist`);
        if (m.type === 'volume' && !(compose.volumes && m.source in compose.volumes))
          problems.push(`service ${name} uses volume ${m.source}, which the top-level volumes: does not declare`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('Prometheus (docker/prometheus)', () => {
  const prometheus = service('prometheus');

  it('is mounted with its config and the rule files that config loads', () => {
    const problems: string[] = [];
    const configPath = flagValue(commandOf(prometheus), '--config.file') ?? '/etc/prometheus/prometheus.yml';
    const hostConfig = hostPathOf(prometheus, configPath);
    if (!hostConfig) problems.push(`prometheus reads ${configPath}, which no bind mount provides`);
    else if (hostConfig !== join(PROMETHEUS_DIR, 'prometheus.yml')) problems.push(`prometheus reads ${hostConfig}, expected docker/prometheus/prometheus.yml`);
    else {
      const mountedDir = hostPathOf(prometheus, dirname(configPath)) ?? '';
      for (const pattern of readPrometheus('prometheus.yml').rule_files ?? []) {
        const files = ruleFilesMatching(PROMETHEUS_DIR, pattern);
        if (files.length === 0) problems.push(`rule_files pattern ${pattern} matches no file in docker/prometheus`);
        // The container sees only the mounted folder: rules must live inside it.
        for (const f of files) if (!f.startsWith(mountedDir + sep)) problems.push(`rule file ${f} is outside the mounted folder ${mountedDir}`);
      }
      if ((readPrometheus('prometheus.yml').rule_files ?? []).length === 0) problems.push('prometheus.yml loads no rule_files');
    }
    expect(problems).toEqual([]);
  });

  it('keeps prometheus.native.yml equal to prometheus.yml with every target on 127.0.0.1', () => {
    // Derive the native config from the Docker one: same jobs, ports, rules and intervals; only hosts change.
    const docker = readPrometheus('prometheus.yml');
    const expected = structuredClone(docker);
    for (const job of expected.scrape_configs ?? [])
      for (const sc of job.static_configs ?? []) sc.targets = (sc.targets ?? []).map((t) => `127.0.0.1:${portOf(t)}`);
    expect(readPrometheus('prometheus.native.yml'), 'prometheus.native.yml drifted from prometheus.yml (expected: prometheus.yml with 127.0.0.1 hosts)').toEqual(expected);
  });

  it('gives scripts/services.sh a native config with loopback addresses only', () => {
    // services.sh refuses a config that mentions any non-loopback host:port outside comments.
    const text = readFileSync(join(PROMETHEUS_DIR, 'prometheus.native.yml'), 'utf8');
    const addresses = text
      .split('\n')
      .filter((l) => !/^\s*#/.test(l))
      .flatMap((l) => l.match(/[A-Za-z0-9._-]+:[0-9]{2,5}\b/g) ?? []);
    expect(addresses.filter((a) => !/^(localhost|127\.[0-9.]+):/.test(a))).toEqual([]);
  });
});

describe('Grafana (grafana/provisioning)', () => {
  const grafana = service('grafana');
  const grafanaEnv = environment(grafana);
  /** Grafana expands $VAR and ${VAR} in provisioning files from its own environment; an unset one becomes ''. */
  const expand = (v: unknown, unset: string[]) =>
    String(v ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_m, a: string | undefined, b: string | undefined) => {
      const name = (a ?? b)!;
      if (grafanaEnv[name] === undefined) unset.push(name);
      return grafanaEnv[name] ?? '';
    });

  it('mounts the repository provisioning and dashboards folders', () => {
    const problems: string[] = [];
    const provisioning = hostPathOf(grafana, '/etc/grafana/provisioning');
    if (provisioning !== join(REPO_ROOT, 'grafana', 'provisioning')) problems.push(`/etc/grafana/provisioning comes from ${provisioning ?? 'nowhere'}, expected ../grafana/provisioning`);
    for (const sub of ['datasources', 'dashboards', 'alerting']) {
      const dir = join(REPO_ROOT, 'grafana', 'provisioning', sub);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) problems.push(`grafana/provisioning/${sub} is missing`);
    }
    const providers = (readYaml(join(REPO_ROOT, 'grafana/provisioning/dashboards/dashboards.yaml')) as { providers?: { type?: string; options?: { path?: string } }[] }).providers ?? [];
    if (providers.length === 0) problems.push('grafana/provisioning/dashboards/dashboards.yaml has no providers');
    for (const p of providers) {
      const path = p.options?.path ?? '';
      const host = hostPathOf(grafana, path);
      if (p.type !== 'file') problems.push(`dashboard provider type ${p.type}, expected file`);
      if (host !== join(REPO_ROOT, 'grafana', 'dashboards')) problems.push(`dashboard provider path ${path} comes from ${host ?? 'no mount'}, expected ../grafana/dashboards`);
    }
    for (const m of mounts(grafana).filter((x) => x.type === 'bind'))
      if (!m.readOnly) problems.push(`grafana mounts ${m.source} read-write; mount repository folders read-only`);
    expect(problems).toEqual([]);
  });

  it('provisions the TimescaleDB and Prometheus data sources the workers use', () => {
    const problems: string[] = [];
    const unset: string[] = [];
    const file = readYaml(join(REPO_ROOT, 'grafana/provisioning/datasources/datasources.yaml')) as {
      datasources?: { uid?: string; type?: string; url?: string; user?: string; jsonData?: Record<string, unknown>; secureJsonData?: Record<string, unknown> }[];
    };
    const ds = file.datasources ?? [];
    const tsdb = ds.find((d) => d.uid === 'tickwatch-timescaledb');
    const db = new URL(workerConfig('writer').database.url);
    if (!tsdb) problems.push('no data source with uid tickwatch-timescaledb');
    else {
      if (tsdb.type !== 'grafana-postgresql-datasource') problems.push(`tickwatch-timescaledb has type ${tsdb.type}, expected grafana-postgresql-datasource`);
      const url = expand(tsdb.url, unset);
      const host = url.slice(0, url.lastIndexOf(':'));
      problems.push(...addressProblems('data source tickwatch-timescaledb', host, portOf(url)));
      if (`${host}:${portOf(url)}` !== `${db.hostname}:${db.port || 5432}`) problems.push(`data source tickwatch-timescaledb url ${url}, the workers use ${db.host}`);
      const got = {
        user: expand(tsdb.user, unset),
        database: expand(tsdb.jsonData?.database, unset),
        password: expand(tsdb.secureJsonData?.password, unset),
      };
      // Grafana logs in as the read-only role migrate creates, never as the workers' owner role.
      const reader = workerConfig('migrate').database.reader;
      const want = { user: reader.user, database: db.pathname.slice(1), password: reader.password };
      for (const k of ['user', 'database', 'password'] as const)
        if (got[k] !== want[k]) problems.push(`data source tickwatch-timescaledb ${k} resolves to "${got[k]}", migrate makes "${want[k]}"`);
      if (got.user === decodeURIComponent(db.username)) problems.push('data source tickwatch-timescaledb logs in as the workers\' role');
      if (tsdb.jsonData?.timescaledb !== true) problems.push('data source tickwatch-timescaledb: set jsonData.timescaledb: true');
      if (typeof tsdb.secureJsonData?.password === 'string' && !tsdb.secureJsonData.password.startsWith('$'))
        problems.push('data source tickwatch-timescaledb: the password is a literal; reference an environment variable');
    }
    const prom = ds.find((d) => d.uid === 'tickwatch-prometheus');
    if (!prom) problems.push('no data source with uid tickwatch-prometheus');
    else {
      const url = new URL(expand(prom.url, unset));
      if (prom.type !== 'prometheus') problems.push(`tickwatch-prometheus has type ${prom.type}, expected prometheus`);
      problems.push(...addressProblems('data source tickwatch-prometheus', url.hostname, Number(url.port || 80)));
    }
    for (const name of new Set(unset)) problems.push(`datasources.yaml uses $${name}, which the grafana service's environment does not set`);
    expect(problems).toEqual([]);
  });

  it('refuses to start without the database passwords: no known default', () => {
    const raw = rawEnvironment(services.timescaledb!).POSTGRES_PASSWORD ?? '';
    expect(() => interpolate(raw), 'an unset database password must stop `docker compose up`').toThrow(/required/);
    expect(() => interpolate(rawEnvironment(grafana).TICKWATCH_DB_PASSWORD ?? ''), 'an unset reader password must stop it too').toThrow(/required/);
    for (const [name, variable] of [['writer', 'WRITER_DB_PASSWORD'], ['metrics', 'METRICS_DB_PASSWORD']] as const) {
      expect(() => interpolate(rawEnvironment(service(name))[variable] ?? ''), `an unset ${variable} must stop it too`).toThrow(/required/);
    }
  });

  it('takes the admin password from the user, never a literal or admin', () => {
    const raw = rawEnvironment(grafana).GF_SECURITY_ADMIN_PASSWORD ?? '';
    expect(raw, 'GF_SECURITY_ADMIN_PASSWORD must be a required variable like ${GRAFANA_ADMIN_PASSWORD:?message}, without a default').toMatch(
      /^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/,
    );
    expect(() => interpolate(raw), 'an unset admin password must stop `docker compose up`').toThrow(/required/);
    expect(interpolate(raw, { GRAFANA_ADMIN_PASSWORD: 'x' })).not.toBe('admin');
  });

  it('sends mail through the catcher and links back where the workers say Grafana is', () => {
    const problems: string[] = [];
    const smtp = grafanaEnv.GF_SMTP_HOST ?? '';
    if (grafanaEnv.GF_SMTP_ENABLED !== 'true') problems.push('grafana: GF_SMTP_ENABLED is not true');
    if (!grafanaEnv.GF_SMTP_FROM_ADDRESS) problems.push('grafana: GF_SMTP_FROM_ADDRESS is not set');
    problems.push(...addressProblems('grafana GF_SMTP_HOST', smtp.slice(0, smtp.lastIndexOf(':')), portOf(smtp)));
    const dashboard = new URL(workerConfig('metrics').metrics.dashboardUrl);
    if (grafanaEnv.GF_SERVER_ROOT_URL && new URL(grafanaEnv.GF_SERVER_ROOT_URL).origin !== dashboard.origin)
      problems.push(`grafana GF_SERVER_ROOT_URL ${grafanaEnv.GF_SERVER_ROOT_URL} differs from the workers' DASHBOARD_URL ${dashboard.origin}`);
    const port = Number(dashboard.port || 80);
    if (!portMappings(grafana).some((p) => p.published === port && listenPorts('grafana').includes(p.target)))
      problems.push(`DASHBOARD_URL ${dashboard.href} uses host port ${port}, which grafana does not publish`);
    expect(problems).toEqual([]);
  });
});

// Whether a run is traced, and where its spans go: decided from the environment (OTLP over HTTP) and the
// `--trace FILE` flag (OTLP JSON lines). Reads no OpenTelemetry package: untraced runs never load one.

export interface TraceSettings {
  /** OTLP/HTTP traces URL (`.../v1/traces`), from OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT. */
  endpoint?: string;
  /** Which variable gave `endpoint` (named in messages). */
  endpointVar?: string;
  /** `--trace FILE`: append one OTLP JSON document (ExportTraceServiceRequest) per line. */
  file?: string;
  /** OTEL_SERVICE_NAME, else `checkpoint`. */
  serviceName: string;
}

export interface TraceConfigResult {
  settings?: TraceSettings;
  /** Something in the environment was set but unusable: said once, and the run goes on untraced by it. */
  warnings: string[];
}

const TRACES_VAR = 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT';
const ENDPOINT_VAR = 'OTEL_EXPORTER_OTLP_ENDPOINT';

/**
 * The traces URL the OTLP exporters use: the signal-specific variable as it is; the generic one with
 * `v1/traces` appended (OTLP exporter specification).
 */
function endpointFrom(env: NodeJS.ProcessEnv): { url: string; from: string } | undefined {
  const specific = env[TRACES_VAR]?.trim();
  if (specific) return { url: specific, from: TRACES_VAR };
  const generic = env[ENDPOINT_VAR]?.trim();
  if (generic)
    return { url: `${generic.endsWith('/') ? generic : `${generic}/`}v1/traces`, from: ENDPOINT_VAR };
  return undefined;
}

export function traceConfig(env: NodeJS.ProcessEnv, file?: string): TraceConfigResult {
  const warnings: string[] = [];
  const serviceName = env.OTEL_SERVICE_NAME?.trim() || 'checkpoint';
  let endpoint: { url: string; from: string } | undefined;
  // The SDK's own switches turn off what the environment turned on (never an explicit `--trace FILE`).
  const disabled =
    env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' ||
    env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none';
  if (!disabled) endpoint = endpointFrom(env);
  if (endpoint) {
    let ok = false;
    try {
      const u = new URL(endpoint.url);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
    if (!ok) {
      warnings.push(
        `${endpoint.from}: "${env[endpoint.from]}" is not an http(s) URL; traces are not sent. Set it to the collector's OTLP/HTTP address, e.g. http://localhost:4318`,
      );
      endpoint = undefined;
    }
  }
  if (!endpoint && file === undefined) return { warnings };
  return {
    settings: {
      serviceName,
      ...(endpoint ? { endpoint: endpoint.url, endpointVar: endpoint.from } : {}),
      ...(file !== undefined ? { file } : {}),
    },
    warnings,
  };
}

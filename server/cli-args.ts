// What `troupe node|ping|…` (server/cli.ts) and `troupe relay` (server/relay.ts) both read from
// their arguments: the cluster secret and seed addresses.

/** What {@link secretFrom} reads. */
export interface SecretArgs {
  /** `--secret S`. */
  secret?: string;
  /** `--secret-env NAME`: read the secret from this environment variable instead of TROUPE_SECRET. */
  'secret-env'?: string;
}

/** The message a command exits with when it has no cluster secret. */
export const SECRET_REQUIRED =
  'a cluster secret is required: --secret S, or the TROUPE_SECRET environment variable';

/**
 * The cluster secret a command was given: `--secret`, else the variable `--secret-env` names,
 * else `TROUPE_SECRET`; `undefined` when none is set.
 * @example
 * const secret = secretFrom({ 'secret-env': 'MY_SECRET' }); // process.env.MY_SECRET
 */
export function secretFrom(
  o: SecretArgs,
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  return o.secret ?? (o['secret-env'] ? env[o['secret-env']] : env.TROUPE_SECRET);
}

/**
 * A seed as given on the command line — `host:port` or a full address — as an address to join
 * (`tcp://host:port` for the bare form).
 * @example
 * seedAddress('127.0.0.1:4000'); // 'tcp://127.0.0.1:4000'
 */
export function seedAddress(seed: string): string {
  return seed.includes('://') ? seed : `tcp://${seed}`;
}

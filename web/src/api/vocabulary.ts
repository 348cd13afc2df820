// The server's vocabulary (roles, route kinds, usage groupings, orders, buckets, export formats),
// read from the OpenAPI document: `schema.ts` is generated with `--enum-values`, so the value
// lists below are the server's own and a new value reaches the console with `npm run gen:api`.
import {
  bucketValues,
  exportFormatValues,
  groupingValues,
  roleValues,
  routeKindValues,
  sortOrderValues,
  type components,
  type paths,
} from './schema';

type S = components['schemas'];
export type Role = S['Role'];
export type RouteKind = S['RouteKind'];
export type Grouping = S['Grouping'];
export type SortOrder = S['SortOrder'];
export type Bucket = S['Bucket'];
export type ExportFormat = S['ExportFormat'];

export const ROUTE_KINDS: readonly RouteKind[] = routeKindValues;
export const GROUPINGS: readonly Grouping[] = groupingValues;
export const SORT_ORDERS: readonly SortOrder[] = sortOrderValues;
export const BUCKETS: readonly Bucket[] = bucketValues;
export const EXPORT_FORMATS: readonly ExportFormat[] = exportFormatValues;

/**
 * How powerful each role is (the server's `Role` order). A `Record` over the schema's type, so a
 * role added on the server fails to compile here until it is given its place.
 */
export const ROLE_RANK: Readonly<Record<Role, number>> = { viewer: 0, member: 1, admin: 2, owner: 3 };

/** Every role, most powerful first (the order of the role selects). */
export const ROLES: readonly Role[] = [...roleValues].sort((a, b) => ROLE_RANK[b] - ROLE_RANK[a]);

function member<V extends string>(values: readonly V[]) {
  return (text: string | null | undefined): text is V => text != null && (values as readonly string[]).includes(text);
}

/** Whether a string from the server is one of the roles. */
export const isRole = member(roleValues);
/** Whether a string is one of the route kinds. */
export const isRouteKind = member(routeKindValues);
/** Whether a string is one of the usage orders. */
export const isSortOrder = member(sortOrderValues);
/** Whether a string is one of the export formats. */
export const isExportFormat = member(exportFormatValues);

// Limits and alerts. Their types are read from the paths, not from schema names, so the console
// keeps compiling whatever the server calls its view types. Their enums are inline in the document
// (tagged unions), so the value lists are written here as `Record`s over the schema's types: a
// value added on the server fails to compile until it is listed.
type Json<R> = R extends { content: { 'application/json': infer B } } ? B : never;
export type LimitView = Json<paths['/api/v1/limits']['get']['responses'][200]>['limits'][number];
export type LimitUsage = NonNullable<LimitView['usage']>;
export type LimitCreate = NonNullable<paths['/api/v1/limits']['post']['requestBody']>['content']['application/json'];
export type LimitUpdate = NonNullable<paths['/api/v1/limits/{id}']['put']['requestBody']>['content']['application/json'];
export type ChannelView = Json<paths['/api/v1/alerts/channels']['get']['responses'][200]>['channels'][number];
export type ChannelCreate = NonNullable<
  paths['/api/v1/alerts/channels']['post']['requestBody']
>['content']['application/json'];
export type DeliveryView = Json<paths['/api/v1/alerts/deliveries']['get']['responses'][200]>['deliveries'][number];

export type Scope = LimitView['scope'];
export type ScopeType = Scope['type'];
export type LimitKind = LimitView['kind'];
export type LimitKindType = LimitKind['type'];
export type RatePer = Extract<LimitKind, { type: 'requests' }>['per'];
export type Period = Extract<LimitKind, { type: 'token_budget' }>['period'];
export type Enforcement = LimitView['enforcement'];
export type ChannelFormat = ChannelView['format'];
export type DeliveryStatus = DeliveryView['status'];

function keysOf<V extends string>(record: Readonly<Record<V, true>>): readonly V[] {
  return Object.keys(record) as V[];
}

export const SCOPE_TYPES = keysOf<ScopeType>({ instance: true, team: true, key: true, route: true });
export const LIMIT_KIND_TYPES = keysOf<LimitKindType>({
  requests: true,
  tokens_per_minute: true,
  concurrency: true,
  token_budget: true,
  cost_budget: true,
});
export const RATE_PERS = keysOf<RatePer>({ second: true, minute: true, hour: true });
export const PERIODS = keysOf<Period>({ day: true, week: true, month: true, total: true });
export const ENFORCEMENTS = keysOf<Enforcement>({ hard: true, soft: true });
export const CHANNEL_FORMATS = keysOf<ChannelFormat>({ generic: true, slack: true });
export const DELIVERY_STATUSES = keysOf<DeliveryStatus>({ delivered: true, failed: true, gave_up: true });

/**
 * A time from the server as epoch ms: the console's views send epoch ms, some send RFC 3339
 * text; both are read, anything else is null.
 */
export function epochMs(value: number | string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

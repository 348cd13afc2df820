// Queries that more than one page reads, with the cache keys they share: a page that changes a
// list invalidates the key here and every page showing it refetches.
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { client, unwrap } from './client';
import type { operations } from './schema';

/** How long a reference list (teams, routes, keys used as filter choices) stays fresh. */
export const REFERENCE_STALE_MS = 60_000;

/** Options a caller may add to a shared query. */
export interface SharedQueryOptions {
  staleTime?: number;
  enabled?: boolean;
}

export type UsageQuery = NonNullable<operations['summary']['parameters']['query']>;
export type SeriesQuery = NonNullable<operations['series']['parameters']['query']>;
export type TopQuery = NonNullable<operations['top']['parameters']['query']>;
export type KeysQuery = NonNullable<operations['list_keys']['parameters']['query']>;

/** The teams the caller can see (`/api/v1/teams`). */
export function useTeams(options: SharedQueryOptions = {}) {
  return useQuery({ queryKey: ['teams'], queryFn: () => unwrap(client.GET('/api/v1/teams')), ...options });
}

/** The routes the caller can see (`/api/v1/routes`). */
export function useRoutes(options: SharedQueryOptions = {}) {
  return useQuery({ queryKey: ['routes'], queryFn: () => unwrap(client.GET('/api/v1/routes')), ...options });
}

/** The keys the caller can see, optionally of one team (`/api/v1/keys`). */
export function useKeys(query?: KeysQuery, options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: query === undefined ? ['keys'] : ['keys', query],
    queryFn: () => unwrap(client.GET('/api/v1/keys', { params: { query: query ?? {} } })),
    ...options,
  });
}

/** Every user of the instance (`/api/v1/users`, instance admins). */
export function useUsers(options: SharedQueryOptions = {}) {
  return useQuery({ queryKey: ['users'], queryFn: () => unwrap(client.GET('/api/v1/users')), ...options });
}

/** The token quotas the caller can see (`/api/v1/quotas`). */
export function useQuotas(options: SharedQueryOptions = {}) {
  return useQuery({ queryKey: ['quotas'], queryFn: () => unwrap(client.GET('/api/v1/quotas')), ...options });
}

/** The instance settings (`/api/v1/settings`, instance admins). */
export function useSettings(options: SharedQueryOptions = {}) {
  return useQuery({ queryKey: ['settings'], queryFn: () => unwrap(client.GET('/api/v1/settings')), ...options });
}

/** The members of one team (`/api/v1/teams/{id}/members`), as options for `useQuery`/`useQueries`. */
export function teamMembersQuery(id: number) {
  return {
    queryKey: ['team-members', id],
    queryFn: () => unwrap(client.GET('/api/v1/teams/{id}/members', { params: { path: { id } } })),
  };
}

// Usage figures: the key starts with `usage` so that one invalidation refreshes them all; a null
// query means "not now" (the filters are invalid). The previous answer stays on screen while the
// next one loads, so charts do not flash empty when a filter changes.

/** Totals for a range and filters (`/api/v1/usage/summary`). */
export function useUsageSummary(query: UsageQuery | null, options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: ['usage', 'summary', query],
    queryFn: () => unwrap(client.GET('/api/v1/usage/summary', { params: { query: query ?? {} } })),
    placeholderData: keepPreviousData,
    ...options,
    enabled: (options.enabled ?? true) && query !== null,
  });
}

/** A series of hourly or daily points (`/api/v1/usage/series`). */
export function useUsageSeries(query: SeriesQuery | null, options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: ['usage', 'series', query],
    queryFn: () => unwrap(client.GET('/api/v1/usage/series', { params: { query: query ?? {} } })),
    placeholderData: keepPreviousData,
    ...options,
    enabled: (options.enabled ?? true) && query !== null,
  });
}

/** A top-N by key, route, model, team or status class (`/api/v1/usage/top`). */
export function useUsageTop(query: TopQuery | null, options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: ['usage', 'top', query],
    queryFn: () => unwrap(client.GET('/api/v1/usage/top', { params: { query: query ?? {} } })),
    placeholderData: keepPreviousData,
    ...options,
    enabled: (options.enabled ?? true) && query !== null,
  });
}

export type LimitsQuery = NonNullable<operations['list_limits']['parameters']['query']>;
export type DeliveriesQuery = NonNullable<operations['list_deliveries']['parameters']['query']>;

/**
 * The limits the caller can see with their current use (`/api/v1/limits`), optionally of one
 * scope. Every limit query shares the `limits` key prefix, so one invalidation refreshes all.
 */
export function useLimits(query?: LimitsQuery, options: SharedQueryOptions & { refetchInterval?: number } = {}) {
  return useQuery({
    queryKey: query === undefined ? ['limits'] : ['limits', query],
    queryFn: () => unwrap(client.GET('/api/v1/limits', { params: { query: query ?? {} } })),
    ...options,
  });
}

/** The alert channels (`/api/v1/alerts/channels`). */
export function useAlertChannels(options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: ['alert-channels'],
    queryFn: () => unwrap(client.GET('/api/v1/alerts/channels')),
    ...options,
  });
}

/** Recent delivery attempts, newest first (`/api/v1/alerts/deliveries`). */
export function useDeliveries(query?: DeliveriesQuery, options: SharedQueryOptions & { refetchInterval?: number } = {}) {
  return useQuery({
    queryKey: ['alert-deliveries', query ?? {}],
    queryFn: () => unwrap(client.GET('/api/v1/alerts/deliveries', { params: { query: query ?? {} } })),
    ...options,
  });
}

/** The alert rules the server evaluates (`/api/v1/alerts/rules`, instance admins). */
export function useAlertRules(options: SharedQueryOptions = {}) {
  return useQuery({
    queryKey: ['alert-rules'],
    queryFn: () => unwrap(client.GET('/api/v1/alerts/rules')),
    ...options,
  });
}

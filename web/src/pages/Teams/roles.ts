// What a role may do to another, as the console offers it (the server decides again).
import { ROLE_RANK, ROLES, type Role } from '../../api/vocabulary';
import { basename } from '../../App';

/**
 * Whether a caller with role `caller` may give `target` to someone whose role is `current`
 * (`null`: not a member yet). Owners may do anything; admins only deal in members and viewers;
 * members and viewers manage nobody. The same rule as `Role::may_assign` on the server.
 */
export function mayAssign(caller: Role | null, current: Role | null, target: Role): boolean {
  if (caller === 'owner') return true;
  if (caller === 'admin') {
    return ROLE_RANK[target] <= ROLE_RANK.member && (current === null || ROLE_RANK[current] <= ROLE_RANK.member);
  }
  return false;
}

/** Roles a caller may invite someone with, or add them as. */
export function invitableRoles(caller: Role | null): Role[] {
  return ROLES.filter((r) => mayAssign(caller, null, r));
}

export interface MemberActions {
  /** Roles offered in the member's role select (always includes the current role when non-empty). */
  roles: Role[];
  /** Whether the role may be changed at all. */
  canChangeRole: boolean;
  /** Whether "Remove" is offered. */
  canRemove: boolean;
  /** The member is the team's only owner: neither demoted nor removed. */
  lastOwner: boolean;
}

/**
 * What the console offers for one member, given the caller's role in the team and how many
 * owners the team has. Removal is "assigning nothing": allowed when the caller could demote the
 * member to viewer. The last owner keeps their role (the server answers 409 otherwise).
 */
export function memberActions(caller: Role | null, target: Role, ownerCount: number): MemberActions {
  const lastOwner = target === 'owner' && ownerCount <= 1;
  if (lastOwner || (caller !== 'owner' && caller !== 'admin')) {
    return { roles: [], canChangeRole: false, canRemove: false, lastOwner };
  }
  const others = ROLES.filter((r) => r !== target && mayAssign(caller, target, r));
  const canChangeRole = others.length > 0;
  return {
    roles: canChangeRole ? ROLES.filter((r) => r === target || others.includes(r)) : [],
    canChangeRole,
    canRemove: mayAssign(caller, target, 'viewer'),
    lastOwner,
  };
}

/** The absolute address of an invitation link (`/invite/<token>`), under `/console` when served there. */
export function invitationUrl(link: string, location: { origin: string; pathname: string } = window.location): string {
  const base = basename(location.pathname);
  const prefix = base === '/' ? '' : base;
  return `${location.origin}${prefix}${link.startsWith('/') ? link : `/${link}`}`;
}

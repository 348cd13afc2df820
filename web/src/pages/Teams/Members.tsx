// One team's members: roles, removal, and adding someone who already has an account.
import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type Schemas } from '../../api/client';
import { teamMembersQuery, useUsers } from '../../api/queries';
import { useAuth, usePermissions } from '../../auth';
import { isRole, ROLE_RANK, ROLES, type Role } from '../../api/vocabulary';
import { date, dateTime } from '../../format';
import {
  ConfirmDialog,
  Dialog,
  Empty,
  ErrorAlert,
  Field,
  FormButtons,
  QueryState,
  useToast,
} from '../../components/ui';
import { RoleBadge } from './RoleBadge';
import { ns } from './messages';
import { memberActions } from './roles';

type Member = Schemas['MembershipView'];

export function Members({ teamId, callerRole }: { teamId: number; callerRole: Role | null }) {
  const { t } = useTranslation([ns, 'common']);
  const can = usePermissions();
  const { refresh } = useAuth();
  const toast = useToast();
  const queries = useQueryClient();
  const members = useQuery(teamMembersQuery(teamId));
  const [removing, setRemoving] = useState<Member | null>(null);
  const [selfChange, setSelfChange] = useState<{ member: Member; role: Role } | null>(null);
  const [adding, setAdding] = useState(false);

  const sorted = useMemo(
    () =>
      [...(members.data ?? [])].sort(
        (a, b) =>
          (isRole(b.role) ? ROLE_RANK[b.role] : -1) - (isRole(a.role) ? ROLE_RANK[a.role] : -1) || a.email.localeCompare(b.email),
      ),
    [members.data],
  );
  const owners = sorted.filter((m) => m.role === 'owner').length;
  const manages = callerRole === 'owner' || callerRole === 'admin';

  const afterChange = async (userId: number) => {
    await queries.invalidateQueries({ queryKey: ['team-members', teamId] });
    void queries.invalidateQueries({ queryKey: ['teams'] });
    if (userId === can.userId) {
      await refresh();
      void queries.invalidateQueries({ queryKey: ['team', teamId] });
    }
  };
  const setRole = useMutation({
    mutationFn: ({ member, role }: { member: Member; role: Role }) =>
      unwrap(
        client.PUT('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: member.user_id } },
          body: { role },
        }),
      ),
    onSuccess: async (m) => {
      toast(t('role_changed', { email: m.email, role: t(`common:role_${m.role}`) }));
      setSelfChange(null);
      await afterChange(m.user_id);
    },
  });
  const remove = useMutation({
    mutationFn: (member: Member) =>
      unwrap(
        client.DELETE('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: member.user_id } },
        }),
      ),
    onSuccess: async (_, member) => {
      toast(t('removed', { email: member.email }));
      setRemoving(null);
      await afterChange(member.user_id);
    },
  });

  return (
    <section className="card" aria-labelledby="members-title">
      <div className="page-header" style={{ marginBottom: '0.5rem' }}>
        <h2 id="members-title" style={{ margin: 0 }}>
          {t('members')}
        </h2>
        <span className="spacer" />
        {can.isAdmin && (
          <button type="button" onClick={() => setAdding(true)}>
            {t('add_member')}
          </button>
        )}
      </div>
      {manages && (
        <p className="muted" style={{ marginTop: 0, fontSize: '0.85rem' }}>
          {t('members_help')}
        </p>
      )}
      {!selfChange && <ErrorAlert error={setRole.error} />}
      <QueryState query={members} empty={t('no_members')}>
        {() => (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{t('col_member')}</th>
                  <th>{t('col_role')}</th>
                  <th className="hide-narrow">{t('col_joined')}</th>
                  {manages && <th className="num">{t('col_actions')}</th>}
                </tr>
              </thead>
              <tbody>
                {sorted.map((m) => {
                  const current = isRole(m.role) ? m.role : null;
                  const actions = current
                    ? memberActions(callerRole, current, owners)
                    : { roles: [], canChangeRole: false, canRemove: false, lastOwner: false };
                  const self = m.user_id === can.userId;
                  return (
                    <tr key={m.user_id}>
                      <td>
                        <div>
                          {m.display_name || m.email}
                          {self && <span className="muted"> ({t('you')})</span>}
                        </div>
                        {m.display_name && <div className="muted mono">{m.email}</div>}
                      </td>
                      <td>
                        {actions.canChangeRole ? (
                          <select
                            aria-label={t('role_of', { email: m.email })}
                            value={m.role}
                            disabled={setRole.isPending}
                            onChange={(e) => {
                              const role = e.target.value as Role;
                              if (self) setSelfChange({ member: m, role });
                              else setRole.mutate({ member: m, role });
                            }}
                          >
                            {actions.roles.map((r) => (
                              <option key={r} value={r}>
                                {t(`common:role_${r}`)}
                              </option>
                            ))}
                          </select>
                        ) : (
                          <div className="row" style={{ gap: '0.3rem' }}>
                            <RoleBadge role={m.role} />
                            {actions.lastOwner && manages && (
                              <span className="muted" style={{ fontSize: '0.8rem' }} title={t('last_owner_help')}>
                                {t('last_owner')}
                              </span>
                            )}
                          </div>
                        )}
                      </td>
                      <td className="hide-narrow" title={dateTime(m.joined_at)}>
                        {date(m.joined_at)}
                      </td>
                      {manages && (
                        <td>
                          <div className="actions">
                            {actions.canRemove && (
                              <button
                                type="button"
                                className="small danger"
                                aria-label={t('remove_label', { email: m.email })}
                                onClick={() => setRemoving(m)}
                              >
                                {t('remove')}
                              </button>
                            )}
                          </div>
                        </td>
                      )}
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </QueryState>
      {owners === 1 && manages && (
        <p className="muted" style={{ fontSize: '0.8rem', marginBottom: 0 }}>
          {t('last_owner_help')}
        </p>
      )}
      <ConfirmDialog
        open={removing !== null}
        title={t('remove_title', { email: removing?.email })}
        message={
          removing?.user_id === can.userId
            ? t('remove_self_message')
            : t('remove_message', { email: removing?.email })
        }
        confirmLabel={t('remove')}
        busy={remove.isPending}
        error={remove.error}
        onConfirm={() => removing && remove.mutate(removing)}
        onClose={() => {
          remove.reset();
          setRemoving(null);
        }}
      />
      <ConfirmDialog
        open={selfChange !== null}
        title={t('self_role_title')}
        message={t('self_role_message', { role: selfChange ? t(`common:role_${selfChange.role}`) : '' })}
        confirmLabel={t('change_role')}
        busy={setRole.isPending}
        error={setRole.error}
        onConfirm={() => selfChange && setRole.mutate(selfChange)}
        onClose={() => {
          setRole.reset();
          setSelfChange(null);
        }}
      />
      {can.isAdmin && (
        <AddMemberDialog
          open={adding}
          onClose={() => setAdding(false)}
          teamId={teamId}
          members={members.data ?? []}
          onAdded={(userId) => afterChange(userId)}
        />
      )}
    </section>
  );
}

/** Instance admins add an existing user directly (they are the ones who may list users). */
function AddMemberDialog({
  open,
  onClose,
  teamId,
  members,
  onAdded,
}: {
  open: boolean;
  onClose: () => void;
  teamId: number;
  members: Member[];
  onAdded: (userId: number) => Promise<void>;
}) {
  const { t } = useTranslation([ns, 'common']);
  return (
    <Dialog open={open} onClose={onClose} title={t('add_title')}>
      {open && <AddMemberForm teamId={teamId} members={members} onAdded={onAdded} onClose={onClose} />}
    </Dialog>
  );
}

function AddMemberForm({
  teamId,
  members,
  onAdded,
  onClose,
}: {
  teamId: number;
  members: Member[];
  onAdded: (userId: number) => Promise<void>;
  onClose: () => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const users = useUsers();
  const [userId, setUserId] = useState<number | ''>('');
  const [role, setRole] = useState<Role>('member');
  const add = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT('/api/v1/teams/{id}/members/{user_id}', {
          params: { path: { id: teamId, user_id: Number(userId) } },
          body: { role },
        }),
      ),
    onSuccess: async (m) => {
      toast(t('added', { email: m.email, role: t(`common:role_${m.role}`) }));
      await onAdded(m.user_id);
      onClose();
    },
  });
  const memberIds = new Set(members.map((m) => m.user_id));
  return (
    <QueryState query={users}>
      {(list) => {
        const candidates = list.filter((u) => !memberIds.has(u.id));
        if (candidates.length === 0) return <Empty>{t('no_users_left')}</Empty>;
        return (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              if (userId !== '') add.mutate();
            }}
          >
            <p className="muted" style={{ marginTop: 0 }}>
              {t('add_help')}
            </p>
            <ErrorAlert error={add.error} />
            <Field label={t('user')}>
              <select required value={userId} onChange={(e) => setUserId(e.target.value ? Number(e.target.value) : '')}>
                <option value="" disabled>
                  —
                </option>
                {candidates.map((u) => (
                  <option key={u.id} value={u.id}>
                    {u.display_name && u.display_name !== u.email ? `${u.display_name} <${u.email}>` : u.email}
                  </option>
                ))}
              </select>
            </Field>
            <Field label={t('role')}>
              <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {t(`common:role_${r}`)}
                  </option>
                ))}
              </select>
            </Field>
            <div className="row" style={{ justifyContent: 'flex-end' }}>
              <FormButtons
                onCancel={onClose}
                label={t('add_member')}
                busy={add.isPending}
                disabled={userId === ''}
              />
            </div>
          </form>
        );
      }}
    </QueryState>
  );
}

// The invitation dialog, opened from a team and from the Users page.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, ApiError, type Schemas } from '../../api/client';
import type { Role } from '../../api/vocabulary';
import { dateTime } from '../../format';
import { CopyButton, Dialog, ErrorAlert, Field, FormButtons, TeamOptions } from '../../components/ui';
import { ns } from './messages';
import { invitableRoles, invitationUrl } from './roles';

type TeamChoice = { id: number; name: string; role: Role | null };

/**
 * Invites someone by e-mail to a team and shows the link once, with a Copy button.
 * With one team it invites there; with several the inviter picks the team.
 */
export function InviteDialog({ open, onClose, teams }: { open: boolean; onClose: () => void; teams: TeamChoice[] }) {
  const { t } = useTranslation([ns, 'common']);
  return (
    <Dialog open={open} onClose={onClose} title={t('invite_title')}>
      {/* Remounted on each opening so that the form starts empty. */}
      {open && <InviteForm teams={teams} onClose={onClose} />}
    </Dialog>
  );
}

function InviteForm({ teams, onClose }: { teams: TeamChoice[]; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const [teamId, setTeamId] = useState<number | ''>(teams.length === 1 ? teams[0].id : '');
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('member');
  const [validFor, setValidFor] = useState('7d');
  const [created, setCreated] = useState<Schemas['InvitationCreated'] | null>(null);
  const team = teams.find((x) => x.id === teamId);
  const roles = invitableRoles(team?.role ?? null);

  const create = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST('/api/v1/teams/{id}/invitations', {
          params: { path: { id: Number(teamId) } },
          body: { email: email.trim(), role, expires_in: validFor },
        }),
      ),
    onSuccess: (inv) => {
      setCreated(inv);
      void queries.invalidateQueries({ queryKey: ['team-invitations', inv.team_id] });
      void queries.invalidateQueries({ queryKey: ['users'] });
    },
  });
  const fieldError = (field: string) =>
    create.error instanceof ApiError && create.error.field === field ? create.error.message : null;

  if (created) {
    const url = invitationUrl(created.link);
    return (
      <div>
        <div className="alert success" role="status">
          {t('invitation_created', { email: created.email, expires: dateTime(created.expires_at) })}
        </div>
        <div className="secret">
          <input
            readOnly
            aria-label={t('invitation_link')}
            value={url}
            className="mono"
            style={{ flex: 1, minWidth: 0, border: 0, background: 'transparent' }}
            onFocus={(e) => e.currentTarget.select()}
          />
          <CopyButton text={url} label={t('copy_link')} />
        </div>
        <div className="row" style={{ justifyContent: 'flex-end', marginTop: '1rem' }}>
          <button
            type="button"
            onClick={() => {
              setCreated(null);
              setEmail('');
              create.reset();
            }}
          >
            {t('invite_another')}
          </button>
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        </div>
      </div>
    );
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    if (teamId === '') return;
    create.mutate();
  }

  const generalError = create.error && !(create.error instanceof ApiError && create.error.field) ? create.error : null;
  return (
    <form onSubmit={submit}>
      <ErrorAlert error={generalError} />
      {teams.length !== 1 && (
        <Field label={t('team')}>
          <select
            required
            value={teamId}
            onChange={(e) => {
              const id = e.target.value === '' ? '' : Number(e.target.value);
              setTeamId(id);
              const next = invitableRoles(teams.find((x) => x.id === id)?.role ?? null);
              if (!next.includes(role)) setRole('member');
            }}
          >
            <option value="" disabled>
              —
            </option>
            <TeamOptions teams={teams} />
          </select>
        </Field>
      )}
      <Field label={t('email')} error={fieldError('email')}>
        <input
          type="email"
          required
          autoComplete="off"
          value={email}
          aria-invalid={fieldError('email') ? true : undefined}
          onChange={(e) => setEmail(e.target.value)}
        />
      </Field>
      <Field label={t('role')} error={fieldError('role')}>
        <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
          {(roles.length ? roles : (['member'] as Role[])).map((r) => (
            <option key={r} value={r}>
              {t(`common:role_${r}`)}
            </option>
          ))}
        </select>
      </Field>
      <Field label={t('valid_for')} error={fieldError('expires_in')}>
        <select value={validFor} onChange={(e) => setValidFor(e.target.value)}>
          <option value="1d">{t('days_1')}</option>
          <option value="7d">{t('days_7')}</option>
          <option value="14d">{t('days_14')}</option>
          <option value="30d">{t('days_30')}</option>
        </select>
      </Field>
      <div className="row" style={{ justifyContent: 'flex-end' }}>
        <FormButtons
          onCancel={onClose}
          label={t('create_invitation')}
          busy={create.isPending}
          busyLabel={t('creating')}
          disabled={teamId === ''}
        />
      </div>
    </form>
  );
}

// A role as a badge, on the team pages and the Users page.
import { useTranslation } from 'react-i18next';
import { isRole } from '../../api/vocabulary';

export function RoleBadge({ role }: { role: string }) {
  const { t } = useTranslation('common');
  const tone = role === 'owner' || role === 'admin' ? 'info' : '';
  return <span className={`badge ${tone}`}>{isRole(role) ? t(`role_${role}`) : role}</span>;
}

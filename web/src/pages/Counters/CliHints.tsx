// How to record a reading from the command line or with curl, for the selected counter.
import { Link } from 'react-router';
import { useTranslation } from 'react-i18next';
import { CopyButton } from '../../components/ui';
import { ns } from './messages';

export function CliHints({ name }: { name: string }) {
  const { t } = useTranslation(ns);
  const origin = typeof window === 'undefined' ? '' : window.location.origin;
  const cli = [
    `tollgate sync record 350K "finished the design" --counter ${name}`,
    `tollgate sync quick --counter ${name}`,
    `tollgate sync status --counter ${name}`,
    `tollgate sync estimate "user text" "assistant text" --counter ${name}`,
  ].join('\n');
  const curl = `curl -X POST ${origin}/api/v1/counters/${name}/readings \\
  -H "Authorization: Bearer tgp_…" -H "Content-Type: application/json" \\
  -d '{"reading": "350K", "event": "finished the design", "sync_type": "api"}'`;
  return (
    <section className="card" aria-labelledby="counter-cli-title">
      <h2 id="counter-cli-title">{t('cli_title')}</h2>
      <p className="muted">{t('cli_intro')}</p>
      <div className="counters-code">
        <pre>
          <code>{cli}</code>
        </pre>
        <CopyButton text={cli} />
      </div>
      <p className="muted">
        {t('cli_api')} <Link to="/tokens">{t('cli_tokens_link')}</Link>
      </p>
      <div className="counters-code">
        <pre>
          <code>{curl}</code>
        </pre>
        <CopyButton text={curl} />
      </div>
    </section>
  );
}

// Adding an alert channel; its signing secret is shown once, with a copy button.
import { useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { client, unwrap, type ApiError } from '../../api/client';
import { CHANNEL_FORMATS, type ChannelCreate } from '../../api/vocabulary';
import { Dialog, ErrorAlert, Field, FormButtons, SecretValue, focusFirstInvalid, useToast } from '../../components/ui';
import { ns } from './messages';
import { channelBody, type ChannelErrors, type ChannelForm, fieldOf, validateChannel } from './model';

export function AddChannelDialog({ onClose }: { onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const queries = useQueryClient();
  const toast = useToast();
  const [form, setForm] = useState<ChannelForm>({ name: '', url: '', format: 'generic' });
  const [local, setLocal] = useState<ChannelErrors>({});
  const create = useMutation({
    mutationFn: (body: ChannelCreate) => unwrap(client.POST('/api/v1/alerts/channels', { body })),
    onSuccess: (created) => {
      void queries.invalidateQueries({ queryKey: ['alert-channels'] });
      toast(t('added', { name: created.channel.name }));
    },
  });
  const created = create.data;
  const serverField = fieldOf(create.error);
  const errorAt = (f: keyof ChannelForm): string | null =>
    local[f] ? t(local[f]) : serverField === f ? (create.error as ApiError).message : null;

  function submit(e: FormEvent) {
    e.preventDefault();
    const problems = validateChannel(form);
    setLocal(problems);
    if (Object.keys(problems).length > 0) {
      focusFirstInvalid(e.currentTarget as HTMLFormElement);
      return;
    }
    create.mutate(channelBody(form));
  }

  return (
    <Dialog
      open
      onClose={onClose}
      title={t('add_title')}
      footer={
        created ? (
          <button type="button" className="primary" onClick={onClose}>
            {t('done')}
          </button>
        ) : (
          <FormButtons onCancel={onClose} label={t('common:create')} busy={create.isPending} form="add-channel-form" />
        )
      }
    >
      {created ? (
        <div className="stack">
          <div className="alert success">{t('added', { name: created.channel.name })}</div>
          <div className="alert warning" role="alert">
            <strong>{t('secret_once')}</strong>
          </div>
          <SecretValue value={created.secret} label={t('secret_label')} />
        </div>
      ) : (
        <form id="add-channel-form" onSubmit={submit} noValidate>
          {!serverField && <ErrorAlert error={create.error} />}
          <Field label={t('field_name')} error={errorAt('name')}>
            <input
              value={form.name}
              maxLength={100}
              required
              autoFocus
              aria-invalid={!!errorAt('name') || undefined}
              onChange={(e) => setForm((f) => ({ ...f, name: e.target.value }))}
            />
          </Field>
          <Field label={t('field_url')} help={t('url_help')} error={errorAt('url')}>
            <input
              type="url"
              value={form.url}
              required
              aria-invalid={!!errorAt('url') || undefined}
              onChange={(e) => setForm((f) => ({ ...f, url: e.target.value }))}
            />
          </Field>
          <Field label={t('field_format')} error={errorAt('format')}>
            <select
              value={form.format}
              onChange={(e) => setForm((f) => ({ ...f, format: e.target.value as ChannelForm['format'] }))}
            >
              {CHANNEL_FORMATS.map((x) => (
                <option key={x} value={x}>
                  {t(`format_${x}`)}
                </option>
              ))}
            </select>
          </Field>
        </form>
      )}
    </Dialog>
  );
}

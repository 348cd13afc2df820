// Changing a counter's quota.
import { useEffect, useId, useState } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { integer, percent } from '../../format';
import { Dialog, ErrorAlert, FormButtons, useToast } from '../../components/ui';
import { parseMessage, useParsedFigure } from './ReadingField';
import { ns } from './messages';
import { type CounterStatus, statusQueryKey } from './model';

export function QuotaDialog({ open, counter, onClose }: { open: boolean; counter: CounterStatus; onClose: () => void }) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [text, setText] = useState('');
  const id = useId();
  const formId = useId();
  const parsed = useParsedFigure(text);

  const mutation = useMutation({
    mutationFn: () =>
      unwrap(
        client.PUT('/api/v1/counters/{name}/quota', {
          params: { path: { name: counter.name } },
          body: { quota: text.trim() },
        }),
      ),
    onSuccess: async (updated) => {
      toast(t('quota_saved', { name: updated.name, quota: integer(updated.quota) }));
      queries.setQueryData(statusQueryKey(updated.name), updated);
      await queries.invalidateQueries({ queryKey: ['counters'] });
      onClose();
    },
  });

  // Start from the current quota each time the dialog opens.
  const [wasOpen, setWasOpen] = useState(false);
  if (open !== wasOpen) {
    setWasOpen(open);
    if (open) setText(String(counter.quota));
  }
  const resetMutation = mutation.reset;
  useEffect(() => {
    if (open) resetMutation();
  }, [open, resetMutation]);
  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const quotaError = apiError?.field === 'quota' ? parseMessage(apiError) : null;

  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={t('set_quota_title', { name: counter.name })}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('common:save')}
          busy={mutation.isPending}
          disabled={text.trim() === '' || parsed.status === 'error'}
          form={formId}
        />
      }
    >
      <form
        id={formId}
        onSubmit={(e) => {
          e.preventDefault();
          if (text.trim() !== '') mutation.mutate();
        }}
        noValidate
      >
        <ErrorAlert error={quotaError ? null : mutation.error} />
        <div className="field">
          <label htmlFor={id} className="form-label">
            {t('quota')}
          </label>
          <input
            id={id}
            name="quota"
            autoComplete="off"
            spellCheck={false}
            maxLength={200}
            value={text}
            aria-invalid={parsed.status === 'error' || Boolean(quotaError)}
            aria-describedby={`${id}-feedback`}
            onChange={(e) => setText(e.target.value)}
          />
          <div id={`${id}-feedback`} className="counters-feedback" aria-live="polite">
            {parsed.status === 'ok' ? (
              <div className="alert success counters-parse-ok">
                <strong>{t('parsed', { value: integer(parsed.tokens) })}</strong>
                {parsed.tokens > 0 && (
                  <div>
                    {t('quota_preview', { used: integer(counter.used), percent: percent(counter.used / parsed.tokens) })}
                  </div>
                )}
              </div>
            ) : parsed.status === 'error' ? (
              <div className="alert error counters-parse-error">{parsed.message}</div>
            ) : parsed.status === 'parsing' ? (
              <small className="help">{t('parsing')}</small>
            ) : (
              <small className="help">{t('quota_help')}</small>
            )}
          </div>
          {quotaError && (
            <small className="error" role="alert">
              {quotaError}
            </small>
          )}
        </div>
      </form>
    </Dialog>
  );
}

// Recording a reading: the figure in any format the server parses, with what it will do.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { useMutation, useQueryClient } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError, client, unwrap } from '../../api/client';
import { integer } from '../../format';
import { Dialog, ErrorAlert, Field, FormButtons, useToast } from '../../components/ui';
import { parseMessage, ReadingField } from './ReadingField';
import { ns } from './messages';
import { canReadClipboard, type CounterStatus, DEFAULT_QUOTA, isCounterName, statusQueryKey } from './model';

export function RecordDialog({
  open,
  mode,
  counterName,
  counters,
  current,
  onClose,
  onRecorded,
}: {
  open: boolean;
  mode: 'record' | 'new';
  counterName: string;
  counters: CounterStatus[];
  current: CounterStatus | null;
  onClose: () => void;
  onRecorded: (name: string) => void;
}) {
  const { t } = useTranslation([ns, 'common']);
  const toast = useToast();
  const queries = useQueryClient();
  const [name, setName] = useState('');
  const [text, setText] = useState('');
  const [event, setEvent] = useState('');
  const [conversation, setConversation] = useState('');
  const [syncType, setSyncType] = useState<'manual' | 'clipboard'>('manual');
  const [pasteNote, setPasteNote] = useState<string | null>(null);
  const [nameTouched, setNameTouched] = useState(false);

  const target = mode === 'new' ? name.trim() : counterName;
  const existing = mode === 'new' ? (counters.find((c) => c.name === target) ?? null) : current;
  const nameValid = isCounterName(target);

  const mutation = useMutation({
    mutationFn: () =>
      unwrap(
        client.POST('/api/v1/counters/{name}/readings', {
          params: { path: { name: target } },
          body: {
            reading: text.trim(),
            event: event.trim(),
            conversation_id: conversation.trim() || undefined,
            sync_type: syncType,
          },
        }),
      ),
    onSuccess: async (result) => {
      const r = result.reading;
      toast(
        r.reset
          ? t('recorded_reset', { name: result.counter.name, value: integer(r.reading) })
          : t('recorded', { name: result.counter.name, increment: integer(r.increment) }),
      );
      queries.setQueryData(statusQueryKey(result.counter.name), result.counter);
      await queries.invalidateQueries({ queryKey: ['counters'] });
      onRecorded(result.counter.name);
    },
  });

  // Reset the form each time the dialog opens.
  const resetMutation = mutation.reset;
  useEffect(() => {
    if (open) {
      setName('');
      setText('');
      setEvent('');
      setConversation('');
      setSyncType('manual');
      setPasteNote(null);
      setNameTouched(false);
      resetMutation();
    }
  }, [open, resetMutation]);

  const apiError = mutation.error instanceof ApiError ? mutation.error : null;
  const fieldError = (field: string) => (apiError?.field === field ? parseMessage(apiError) : null);
  const fieldErrors = ['tokens', 'reading', 'event', 'conversation_id', 'counter'];
  const generalError = mutation.error && !(apiError?.field && fieldErrors.includes(apiError.field)) ? mutation.error : null;

  async function paste() {
    try {
      const clip = await navigator.clipboard.readText();
      setText(clip.trim().slice(0, 200));
      setSyncType('clipboard');
      setPasteNote(t('pasted'));
    } catch {
      setPasteNote(t('paste_failed'));
    }
  }

  function submit(e: FormEvent) {
    e.preventDefault();
    setNameTouched(true);
    if (!nameValid || text.trim() === '') return;
    mutation.mutate();
  }

  const formId = useId();
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={mode === 'new' ? t('dialog_new_title') : t('dialog_title')}
      footer={
        <FormButtons
          onCancel={onClose}
          label={t('submit')}
          busy={mutation.isPending}
          busyLabel={t('submitting')}
          disabled={text.trim() === '' || (mode === 'new' && !nameValid)}
          form={formId}
        />
      }
    >
      <form id={formId} onSubmit={submit} noValidate>
        <p className="muted counters-dialog-intro">
          {mode === 'new' ? t('dialog_new_intro', { quota: integer(DEFAULT_QUOTA) }) : t('dialog_intro')}
        </p>
        <ErrorAlert error={generalError} />
        {mode === 'new' ? (
          <Field
            label={t('counter_name')}
            help={existing ? t('counter_exists') : t('counter_name_help')}
            error={
              fieldError('counter') ?? (nameTouched && name !== '' && !nameValid ? t('counter_name_invalid') : null)
            }
          >
            <input
              name="counter"
              autoComplete="off"
              spellCheck={false}
              maxLength={64}
              required
              value={name}
              aria-invalid={(nameTouched && !nameValid) || Boolean(fieldError('counter'))}
              onChange={(e) => setName(e.target.value)}
              onBlur={() => setNameTouched(true)}
            />
          </Field>
        ) : (
          <p className="counters-dialog-target">
            {t('counter')}: <strong className="mono">{counterName}</strong>
          </p>
        )}
        <ReadingField
          value={text}
          onChange={(v) => {
            setText(v);
            if (syncType === 'clipboard') {
              setSyncType('manual');
              setPasteNote(null);
            }
          }}
          used={existing ? existing.used : null}
          quota={existing ? existing.quota : DEFAULT_QUOTA}
          error={fieldError('tokens') ?? fieldError('reading')}
          extra={
            canReadClipboard() ? (
              <button type="button" onClick={() => void paste()}>
                {t('paste')}
              </button>
            ) : null
          }
        />
        {pasteNote && <p className="muted counters-hint">{pasteNote}</p>}
        <Field label={t('event')} help={t('event_help')} error={fieldError('event')}>
          <input
            name="event"
            maxLength={500}
            placeholder={t('event_placeholder')}
            value={event}
            aria-invalid={Boolean(fieldError('event'))}
            onChange={(e) => setEvent(e.target.value)}
          />
        </Field>
        <Field label={t('conversation_id')} error={fieldError('conversation_id')}>
          <input
            name="conversation_id"
            maxLength={200}
            autoComplete="off"
            spellCheck={false}
            value={conversation}
            aria-invalid={Boolean(fieldError('conversation_id'))}
            onChange={(e) => setConversation(e.target.value)}
          />
        </Field>
      </form>
    </Dialog>
  );
}

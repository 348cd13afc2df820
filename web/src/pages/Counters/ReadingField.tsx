// The figure field: what the server parsed from the text (as the user types), and what the
// reading will do to the counter.
import { useEffect, useId, useState, type ReactNode } from 'react';
import { useTranslation } from 'react-i18next';
import { client, unwrap } from '../../api/client';
import { compact, integer, percent } from '../../format';
import { errorMessage } from '../../components/ui';
import { ns } from './messages';
import { EXAMPLES, PARSE_DEBOUNCE_MS, previewReading } from './model';

/** The server's parse of what was typed, debounced; `text` is what the answer is about. */
export type ParseState =
  | { status: 'idle' }
  | { status: 'parsing' }
  | { status: 'ok'; text: string; tokens: number; examples: string[] }
  | { status: 'error'; text: string; message: string };

/** The API names the field (`text: …`); the person typing knows which field it is. */
export function parseMessage(error: unknown): string {
  return errorMessage(error).replace(/^(text|tokens|quota): /, '');
}

/**
 * Asks `POST /api/v1/counters/parse` what `text` means, `delay` ms after it stops changing.
 * While a new answer is awaited the previous one stays (no flicker); only the answer for the
 * latest text is kept.
 */
export function useParsedFigure(text: string, delay = PARSE_DEBOUNCE_MS): ParseState {
  const [state, setState] = useState<ParseState>({ status: 'idle' });
  useEffect(() => {
    if (text.trim() === '') {
      setState({ status: 'idle' });
      return;
    }
    setState((prev) => (prev.status === 'idle' ? { status: 'parsing' } : prev));
    const controller = new AbortController();
    const timer = setTimeout(() => {
      unwrap(client.POST('/api/v1/counters/parse', { body: { text }, signal: controller.signal })).then(
        (parsed) => {
          if (!controller.signal.aborted)
            setState({ status: 'ok', text, tokens: parsed.tokens, examples: parsed.examples });
        },
        (error: unknown) => {
          if (!controller.signal.aborted) setState({ status: 'error', text, message: parseMessage(error) });
        },
      );
    }, delay);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [text, delay]);
  return state;
}

/**
 * The "Reading" input with live feedback: what the server understood, and what recording it will
 * do to a counter that has `used` tokens (null: the counter does not exist yet).
 */
export function ReadingField({
  value,
  onChange,
  used,
  quota,
  error,
  delay,
  extra,
}: {
  value: string;
  onChange: (value: string) => void;
  used: number | null;
  quota: number;
  error?: string | null;
  delay?: number;
  extra?: ReactNode;
}) {
  const { t } = useTranslation(ns);
  const id = useId();
  const parsed = useParsedFigure(value, delay);
  const invalid = (parsed.status === 'error' && parsed.text === value) || Boolean(error);
  return (
    <div className="field">
      <label htmlFor={id} className="form-label">
        {t('reading')}
      </label>
      <div className="counters-input-row">
        <input
          id={id}
          name="reading"
          autoComplete="off"
          inputMode="text"
          spellCheck={false}
          required
          maxLength={200}
          placeholder={t('reading_placeholder')}
          value={value}
          aria-invalid={invalid}
          aria-describedby={`${id}-feedback`}
          onChange={(e) => onChange(e.target.value)}
        />
        {extra}
      </div>
      <div
        id={`${id}-feedback`}
        className={`counters-feedback ${'text' in parsed && parsed.text !== value ? 'stale' : ''}`}
        aria-live="polite"
        data-testid="reading-feedback"
      >
        <ParseFeedback parsed={parsed} used={used} quota={quota} />
      </div>
      {error && (
        <small className="error" role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

function ParseFeedback({ parsed, used, quota }: { parsed: ParseState; used: number | null; quota: number }) {
  const { t } = useTranslation(ns);
  switch (parsed.status) {
    case 'idle':
      return <small className="help">{t('accepted_forms', { examples: EXAMPLES.join(', ') })}</small>;
    case 'parsing':
      return <small className="help">{t('parsing')}</small>;
    case 'error':
      return <div className="alert error counters-parse-error">{parsed.message}</div>;
    case 'ok': {
      const preview = previewReading(used, parsed.tokens);
      const values = {
        value: integer(parsed.tokens),
        used: integer(used),
        increment: integer(preview.increment),
        after: integer(preview.usedAfter),
      };
      const line =
        preview.kind === 'first'
          ? t('preview_first', values)
          : preview.kind === 'reset'
            ? t('preview_reset', values)
            : preview.kind === 'unchanged'
              ? t('preview_unchanged', values)
              : t('preview_increment', values);
      return (
        <div className={`alert ${preview.kind === 'reset' ? 'warning' : 'success'} counters-parse-ok`}>
          <strong>
            {t('parsed', { value: values.value })}
            {parsed.tokens >= 1000 && <span className="muted"> ({compact(parsed.tokens)})</span>}
          </strong>
          <div>
            {preview.kind === 'reset' && <span aria-hidden="true">⚠ </span>}
            {line} {quota > 0 && t('preview_quota', { percent: percent(preview.usedAfter / quota) })}
          </div>
        </div>
      );
    }
  }
}

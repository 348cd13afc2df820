// Small building blocks every page uses: loading / empty / error states, dialogs, drawers, copy,
// badges, fields, pagers and toasts. Pages should not re-implement these.
import {
  cloneElement,
  createContext,
  isValidElement,
  useCallback,
  useContext,
  useEffect,
  useId,
  useRef,
  useState,
  type FormEvent,
  type ReactNode,
} from 'react';
import { useMutation, type UseQueryResult } from '@tanstack/react-query';
import { useTranslation } from 'react-i18next';
import { ApiError } from '../api/client';
import { compact } from '../format';

/** The message of any error, for people. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}

export function Loading({ label }: { label?: string }) {
  const { t } = useTranslation('common');
  return (
    <div className="state" role="status" aria-live="polite">
      <div className="spinner" aria-hidden="true" />
      {label ?? t('loading')}
    </div>
  );
}

export function Empty({ children }: { children?: ReactNode }) {
  const { t } = useTranslation('common');
  return <div className="state empty">{children ?? t('empty')}</div>;
}

export function ErrorState({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const { t } = useTranslation('common');
  return (
    <div className="state error" role="alert">
      <p>{errorMessage(error)}</p>
      {onRetry && (
        <button type="button" onClick={onRetry}>
          {t('retry')}
        </button>
      )}
    </div>
  );
}

/**
 * Renders a query's loading, error and empty states, or its data.
 * `isEmpty` decides emptiness (default: an empty array).
 */
export function QueryState<T>({
  query,
  children,
  isEmpty,
  empty,
}: {
  query: UseQueryResult<T>;
  children: (data: T) => ReactNode;
  isEmpty?: (data: T) => boolean;
  empty?: ReactNode;
}) {
  if (query.isPending) return <Loading />;
  if (query.isError) return <ErrorState error={query.error} onRetry={() => void query.refetch()} />;
  const data = query.data as T;
  const blank = isEmpty ? isEmpty(data) : Array.isArray(data) && data.length === 0;
  if (blank) return <Empty>{empty}</Empty>;
  return <>{children(data)}</>;
}

/** An error box for a failed form or action. */
export function ErrorAlert({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div className="alert error" role="alert">
      {errorMessage(error)}
    </div>
  );
}

/** A modal dialog (native `<dialog>`: focus trap, Escape to close). */
export function Dialog({
  open,
  onClose,
  title,
  children,
  footer,
  className,
}: {
  open: boolean;
  onClose: () => void;
  title: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
  className?: string;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const { t } = useTranslation('common');
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    if (open && !el.open) {
      if (typeof el.showModal === 'function') el.showModal();
      else el.setAttribute('open', '');
    } else if (!open && el.open) {
      if (typeof el.close === 'function') el.close();
      else el.removeAttribute('open');
    }
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={className}
      aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        onClose();
      }}
    >
      {open && (
        <>
          <div className="dialog-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="ghost" onClick={onClose} aria-label={t('close')}>
              ✕
            </button>
          </div>
          <div className="dialog-body">{children}</div>
          {footer && <div className="dialog-foot">{footer}</div>}
        </>
      )}
    </dialog>
  );
}

/** A side panel for details (a dialog docked to the right). */
export function Drawer(props: Parameters<typeof Dialog>[0]) {
  return <Dialog {...props} className={`drawer ${props.className ?? ''}`} />;
}

/** Asks before a destructive action. */
export function ConfirmDialog({
  open,
  title,
  message,
  confirmLabel,
  onConfirm,
  onClose,
  busy,
  error,
}: {
  open: boolean;
  title: ReactNode;
  message: ReactNode;
  confirmLabel: string;
  onConfirm: () => void;
  onClose: () => void;
  busy?: boolean;
  error?: unknown;
}) {
  const { t } = useTranslation('common');
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title={title}
      footer={
        <>
          <button type="button" onClick={onClose}>
            {t('cancel')}
          </button>
          <button type="button" className="danger solid" onClick={onConfirm} disabled={busy}>
            {confirmLabel}
          </button>
        </>
      }
    >
      <ErrorAlert error={error} />
      <p>{message}</p>
    </Dialog>
  );
}

/**
 * A form's Cancel and submit buttons. The submit button is disabled while `busy` (saying
 * `busyLabel`, by default "Saving…") or when `disabled`; `form` ties it to a form it is not
 * inside (in a dialog's footer).
 */
export function FormButtons({
  onCancel,
  label,
  busy,
  busyLabel,
  disabled,
  form,
}: {
  onCancel: () => void;
  label: ReactNode;
  busy: boolean;
  busyLabel?: ReactNode;
  disabled?: boolean;
  form?: string;
}) {
  const { t } = useTranslation('common');
  return (
    <>
      <button type="button" onClick={onCancel}>
        {t('cancel')}
      </button>
      <button type="submit" form={form} className="primary" disabled={busy || disabled}>
        {busy ? (busyLabel ?? t('saving')) : label}
      </button>
    </>
  );
}

/**
 * A form of one name (a team's, a user's display name): the field, its error from the API
 * (`field`), Cancel and submit. `onSubmit` gets the trimmed name; the form closes once it resolves.
 */
export function NameForm({
  label,
  help,
  field,
  maxLength,
  initial,
  submitLabel,
  onSubmit,
  onClose,
}: {
  label: ReactNode;
  help?: ReactNode;
  field: string;
  maxLength: number;
  initial: string;
  submitLabel: ReactNode;
  onSubmit: (name: string) => Promise<unknown>;
  onClose: () => void;
}) {
  const [name, setName] = useState(initial);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const nameError = error instanceof ApiError && error.field === field ? error.message : null;
  async function submit(e: FormEvent) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await onSubmit(name.trim());
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form onSubmit={submit}>
      {!nameError && <ErrorAlert error={error} />}
      <Field label={label} help={help} error={nameError}>
        <input required maxLength={maxLength} autoFocus value={name} onChange={(e) => setName(e.target.value)} />
      </Field>
      <div className="row" style={{ justifyContent: 'flex-end' }}>
        <FormButtons onCancel={onClose} label={submitLabel} busy={busy} disabled={!name.trim()} />
      </div>
    </form>
  );
}

/**
 * Asks before a destructive action on `target` and runs it: the dialog owns the request's state
 * (busy, error), forgets it when the target changes, and closes once `run` succeeds (after
 * `onDone`, for invalidation and a toast). Open while `target` is not null.
 */
export function ConfirmAction<T>({
  target,
  title,
  message,
  confirmLabel,
  run,
  onDone,
  onClose,
}: {
  target: T | null;
  title: ReactNode;
  message: ReactNode;
  confirmLabel: string;
  run: (target: T) => Promise<unknown>;
  onDone?: (target: T) => void;
  onClose: () => void;
}) {
  const action = useMutation({
    mutationFn: run,
    onSuccess: (_, done) => {
      onDone?.(done);
      onClose();
    },
  });
  const { reset } = action;
  useEffect(() => reset(), [target, reset]);
  return (
    <ConfirmDialog
      open={target !== null}
      title={title}
      message={message}
      confirmLabel={confirmLabel}
      busy={action.isPending}
      error={action.error}
      onConfirm={() => target !== null && action.mutate(target)}
      onClose={onClose}
    />
  );
}

/** Copies text to the clipboard (with a fallback where the Clipboard API is unavailable). */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch {
      // fall back below (insecure context, denied permission)
    }
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.setAttribute('readonly', '');
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

export function CopyButton({ text, label }: { text: string; label?: string }) {
  const { t } = useTranslation('common');
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="small"
      onClick={async () => {
        await copyText(text);
        setCopied(true);
        setTimeout(() => setCopied(false), 2000);
      }}
    >
      {copied ? t('copied') : (label ?? t('copy'))}
    </button>
  );
}

/** A secret (key, token) shown in full: a focusable read-only box named `label`, with a copy button. */
export function SecretValue({
  value,
  label,
  copyLabel,
  className,
}: {
  value: string;
  label: string;
  copyLabel?: string;
  className?: string;
}) {
  return (
    <div className="secret">
      <code role="textbox" aria-readonly="true" aria-label={label} tabIndex={0} className={className} style={{ flex: 1 }}>
        {value}
      </code>
      <CopyButton text={value} label={copyLabel} />
    </div>
  );
}

/** An HTTP status coloured by class: 2xx green, 3xx blue, 4xx amber, 5xx red. */
export function StatusBadge({ status }: { status: number }) {
  const tone = status >= 500 ? 'danger' : status >= 400 ? 'warning' : status >= 300 ? 'info' : 'success';
  return <span className={`badge ${tone}`}>{status}</span>;
}

/**
 * A labelled form control with help text and an error message. The help and the error describe
 * the control (`aria-describedby`) rather than being part of its name.
 */
export function Field({
  label,
  help,
  error,
  children,
}: {
  label: ReactNode;
  help?: ReactNode;
  error?: string | null;
  children: ReactNode;
}) {
  const id = useId();
  const helpId = help ? `${id}-help` : undefined;
  const errorId = error ? `${id}-error` : undefined;
  const describedBy = [helpId, errorId].filter(Boolean).join(' ') || undefined;
  // The label names the control by id, so the name is the label alone (a label wrapping a
  // select would also take in its options).
  let controlId: string | undefined;
  let control = children;
  if (isValidElement<{ id?: string; 'aria-describedby'?: string; 'aria-invalid'?: unknown }>(children)) {
    controlId = children.props.id ?? `${id}-control`;
    control = cloneElement(children, {
      id: controlId,
      'aria-describedby':
        [children.props['aria-describedby'], describedBy].filter(Boolean).join(' ') || undefined,
      // An error marks the control invalid unless the control says otherwise.
      ...(error && children.props['aria-invalid'] === undefined ? { 'aria-invalid': true } : {}),
    });
  }
  return (
    <div className="field">
      <label htmlFor={controlId}>{label}</label>
      {control}
      {help && (
        <small className="help" id={helpId}>
          {help}
        </small>
      )}
      {error && (
        <small className="error" id={errorId} role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

/** After a failed submit, moves focus to the form's first invalid control. */
export function focusFirstInvalid(form: HTMLFormElement | null) {
  requestAnimationFrame(() => form?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
}

/** The options of a team select, by name (after an "All teams" option with `all`). */
export function TeamOptions({ teams, all }: { teams: readonly { id: number; name: string }[]; all?: boolean }) {
  const { t } = useTranslation('common');
  return (
    <>
      {all && <option value="">{t('all_teams')}</option>}
      {teams.map((x) => (
        <option key={x.id} value={x.id}>
          {x.name}
        </option>
      ))}
    </>
  );
}

/** A page's title (h1), a line on its purpose (`lede`: a wider, plain one), and its actions at the right. */
export function PageHeader({
  title,
  subtitle,
  lede,
  children,
}: {
  title: ReactNode;
  subtitle?: ReactNode;
  lede?: boolean;
  children?: ReactNode;
}) {
  return (
    <div className="page-header">
      <div>
        <h1>{title}</h1>
        {subtitle && <p className={lede ? 'muted page-lede' : 'muted page-subtitle'}>{subtitle}</p>}
      </div>
      {children && (
        <>
          <span className="spacer" />
          {children}
        </>
      )}
    </div>
  );
}

/**
 * The options of a select over named things (keys, routes): "all", then each item, then the
 * selected id when it is not in the list (deleted, or out of view) so the select can show it.
 */
export function NamedOptions<T extends { id: number; name: string }>({
  items,
  selected,
  all,
  label = (item) => item.name,
  missing = (id) => `#${id}`,
}: {
  items: readonly T[];
  selected: number | undefined;
  all: string;
  label?: (item: T) => string;
  missing?: (id: number) => string;
}) {
  return (
    <>
      <option value="">{all}</option>
      {items.map((item) => (
        <option key={item.id} value={item.id}>
          {label(item)}
        </option>
      ))}
      {selected !== undefined && !items.some((item) => item.id === selected) && (
        <option value={selected}>{missing(selected)}</option>
      )}
    </>
  );
}

/** A figure card: label, big value, optional hint. */
export function StatCard({ label, value, hint }: { label: ReactNode; value: ReactNode; hint?: ReactNode }) {
  return (
    <div className="card stat">
      <div className="label">{label}</div>
      <div className="value">{value}</div>
      {hint && <div className="hint">{hint}</div>}
    </div>
  );
}

/** A compact number with its exact value as a tooltip. */
export function Num({ value }: { value: number | null | undefined }) {
  return <span title={value === null || value === undefined ? undefined : String(value)}>{compact(value)}</span>;
}

/** Previous / next page buttons. */
export function Pager({
  page,
  hasNext,
  onPage,
  total,
}: {
  page: number;
  hasNext: boolean;
  onPage: (page: number) => void;
  total?: number;
}) {
  const { t } = useTranslation('common');
  return (
    <nav className="pager" aria-label={t('pagination')}>
      {total !== undefined && <span className="muted">{t('total', { count: total })}</span>}
      <button type="button" onClick={() => onPage(page - 1)} disabled={page <= 1}>
        {t('previous')}
      </button>
      <span>{t('page', { page })}</span>
      <button type="button" onClick={() => onPage(page + 1)} disabled={!hasNext}>
        {t('next')}
      </button>
    </nav>
  );
}

/** A group of toggle buttons (one pressed). */
export function Segmented<T extends string | number>({
  value,
  options,
  onChange,
  label,
}: {
  value: T;
  options: { value: T; label: ReactNode }[];
  onChange: (v: T) => void;
  label: string;
}) {
  return (
    <div className="segmented" role="group" aria-label={label}>
      {options.map((o) => (
        <button key={String(o.value)} type="button" aria-pressed={o.value === value} onClick={() => onChange(o.value)}>
          {o.label}
        </button>
      ))}
    </div>
  );
}

type Toast = { id: number; text: string };
const ToastContext = createContext<(text: string) => void>(() => {});

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const push = useCallback((text: string) => {
    const id = Date.now() + Math.random();
    setToasts((list) => [...list, { id, text }]);
    setTimeout(() => setToasts((list) => list.filter((x) => x.id !== id)), 4000);
  }, []);
  return (
    <ToastContext.Provider value={push}>
      {children}
      <div className="toasts" role="status" aria-live="polite">
        {toasts.map((x) => (
          <div key={x.id} className="toast">
            {x.text}
          </div>
        ))}
      </div>
    </ToastContext.Provider>
  );
}

/** Shows a short message at the bottom of the screen. */
export function useToast() {
  return useContext(ToastContext);
}

// Alerts: the channel form's checks, who may manage channels, a delivery's tone. Pure, tested.
import { ApiError } from '../../api/client';
import type { ChannelCreate, ChannelFormat, ChannelView, DeliveryStatus, DeliveryView } from '../../api/vocabulary';
import type { Permissions } from '../../auth';

export type { ChannelView, DeliveryView };

export interface ChannelForm {
  name: string;
  url: string;
  format: ChannelFormat;
}

export type ChannelErrors = Partial<Record<keyof ChannelForm, 'bad_name' | 'bad_url'>>;

/** The same checks as the server: a name of 1–100 characters and an http(s) URL with a host. */
export function validateChannel(f: ChannelForm): ChannelErrors {
  const errors: ChannelErrors = {};
  const name = f.name.trim();
  if (name.length < 1 || name.length > 100) errors.name = 'bad_name';
  let ok = false;
  try {
    const u = new URL(f.url.trim());
    ok = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' && !u.username && !u.password;
  } catch {
    ok = false;
  }
  if (!ok || f.url.trim().length > 2048) errors.url = 'bad_url';
  return errors;
}

export function channelBody(f: ChannelForm): ChannelCreate {
  return { name: f.name.trim(), url: f.url.trim(), format: f.format };
}

/** Channels are the instance's: instance admins add, remove and test them. */
export function mayManageChannels(can: Permissions): boolean {
  return can.isAdmin;
}

export function deliveryTone(status: DeliveryStatus): 'success' | 'warning' | 'danger' {
  return status === 'delivered' ? 'success' : status === 'failed' ? 'warning' : 'danger';
}

/**
 * A channel URL for display. The server sends only its display form (the URL is stored sealed),
 * which passes unchanged; a full URL (an older server's) is cut to scheme, host and the path's
 * first segment, since a webhook's path (Slack's, most) is its credential.
 */
export function maskUrl(url: string): string {
  if (url.includes('…')) return url;
  try {
    const u = new URL(url);
    const first = u.pathname.split('/').filter(Boolean)[0];
    const more = u.pathname.split('/').filter(Boolean).length > 1 || u.search;
    return `${u.protocol}//${u.host}${first ? `/${first}` : ''}${more ? '/…' : ''}`;
  } catch {
    return url;
  }
}

export function fieldOf(error: unknown): keyof ChannelForm | null {
  if (!(error instanceof ApiError) || !error.field) return null;
  if (error.field === 'webhook' || error.field === 'url') return 'url';
  if (error.field === 'name' || error.field === 'format') return error.field;
  return null;
}

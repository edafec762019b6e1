/** A backend is its masquerade half (bridge) and its host-port half (portmap) put together. */
import type { BackendName, FirewallDriver } from './driver';

export type MasqueradeHalf = Pick<FirewallDriver, 'available' | 'addMasquerade' | 'prepareMasquerade' | 'delMasquerade' | 'checkMasquerade' | 'gcMasquerade'>;
export type HostportHalf = Pick<FirewallDriver, 'addHostports' | 'delHostports' | 'checkHostports' | 'gcHostports'>;

export const composeDriver = (name: BackendName, m: MasqueradeHalf, h: HostportHalf): FirewallDriver => ({
  name,
  available: m.available,
  addMasquerade: m.addMasquerade,
  ...(m.prepareMasquerade ? { prepareMasquerade: m.prepareMasquerade } : {}),
  delMasquerade: m.delMasquerade,
  checkMasquerade: m.checkMasquerade,
  gcMasquerade: m.gcMasquerade,
  addHostports: h.addHostports,
  delHostports: h.delHostports,
  checkHostports: h.checkHostports,
  gcHostports: h.gcHostports,
});

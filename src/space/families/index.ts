/** The family table: every family and its relative sampling weight. */
import type { Family, FamilyName } from '../family.js';
import { cnnFamily } from './cnn.js';
import { mobilenetFamily } from './mobilenet.js';
import { resnetFamily } from './resnet.js';
import { vggFamily } from './vgg.js';

export interface FamilyEntry {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly family: Family<any>;
  readonly weight: number;
}

export const FAMILY_TABLE: Readonly<Partial<Record<FamilyName, FamilyEntry>>> = {
  cnn: { family: cnnFamily, weight: 1 },
  vgg: { family: vggFamily, weight: 0.5 },
  resnet: { family: resnetFamily, weight: 1.5 },
  mobilenet: { family: mobilenetFamily, weight: 1.5 },
};

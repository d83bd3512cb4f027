/** The family table: every family and its relative sampling weight. */
import type { Family, FamilyName } from '../family.js';
import { bnfreeFamily } from './bnfree.js';
import { cnnFamily } from './cnn.js';
import { convnextFamily } from './convnext.js';
import { densenetFamily } from './densenet.js';
import { inceptionFamily } from './inception.js';
import { mlpFamily } from './mlp.js';
import { mobilenetFamily } from './mobilenet.js';
import { resnetFamily } from './resnet.js';
import { vggFamily } from './vgg.js';
import { vitFamily } from './vit.js';

export interface FamilyEntry {
  // Each family has its own config type; the table erases it.
  readonly family: Family<any>;
  readonly weight: number;
}

/**
 * Weights favour the families whose patterns are richest and most common in user models
 * (residual CNNs, inverted residuals, transformers); MLP and VGG are cheap and simple.
 */
export const FAMILY_TABLE: Readonly<Record<FamilyName, FamilyEntry>> = {
  cnn: { family: cnnFamily, weight: 1 },
  vgg: { family: vggFamily, weight: 0.5 },
  resnet: { family: resnetFamily, weight: 1.5 },
  mobilenet: { family: mobilenetFamily, weight: 1.5 },
  convnext: { family: convnextFamily, weight: 1 },
  vit: { family: vitFamily, weight: 1 },
  densenet: { family: densenetFamily, weight: 0.75 },
  inception: { family: inceptionFamily, weight: 0.75 },
  mlp: { family: mlpFamily, weight: 0.5 },
  bnfree: { family: bnfreeFamily, weight: 0.75 },
};

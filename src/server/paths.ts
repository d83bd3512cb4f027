/** Files the server reads from its own package: the web page, onnxruntime-web's browser build, sample images. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// src/server/paths.ts and dist/server/paths.js are both two levels below the package root.
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Plain HTML/JS/CSS, no build step; shipped under src/ (package.json "files"). */
export const WEB_DIR = path.join(PACKAGE_ROOT, 'src', 'web');
/**
 * The first 256 Fashion-MNIST test images (MAX_SAMPLES) and labels, Debian's idx .gz file names:
 * shipped in the package under assets/ (fixtures/ is test data and is not published).
 */
export const SAMPLES_DIR = path.join(PACKAGE_ROOT, 'assets', 'fashion-mnist');
/** onnxruntime-web's dist directory, wherever npm put the package. */
export const ORT_WEB_DIR = path.dirname(fileURLToPath(import.meta.resolve('onnxruntime-web')));

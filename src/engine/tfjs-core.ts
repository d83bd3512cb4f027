/**
 * The part of the tfjs-core API ghn uses, loaded with require. An ES-module import of the package
 * (a 1.2 MB CommonJS bundle) makes Node scan its source for export names and probe it for module
 * syntax on every start-up: 148 ms against 52 ms through require (measured on the 2-core machine).
 * Every module takes tfjs-core from here (`import * as tf from '…/engine/tfjs-core.js'`), so these
 * lists are the project's whole use of it, checked by the compiler; add a name when you need one.
 */
import { createRequire } from 'node:module';
import type * as Tf from '@tensorflow/tfjs-core';

const tf = createRequire(import.meta.url)('@tensorflow/tfjs-core') as typeof Tf;

export const {
  KernelBackend, Tensor, Variable, abs, add, addN, argMax, argMin, avgPool, backend_util,
  batchNorm, broadcastTo, broadcast_util, cast, ceil, clipByValue, clone, concat, conv2d, cos,
  customGrad, depthwiseConv2d, dispose, div, elu, engine, env, equal, erf, exp, expandDims, eye,
  fill, findBackend, floor, floorDiv, fused, gather, getBackend, getKernel, grad, greater,
  greaterEqual, image, keep, leakyRelu, less, lessEqual, log, logSoftmax, logSumExp, logicalAnd,
  logicalNot, logicalOr, logicalXor, matMul, max, maxPool, maximum, mean, min, minimum, mirrorPad,
  mod, moments, mul, neg, oneHot, ones, onesLike, pad, pow, prod, range, ready, reciprocal,
  registerKernel, relu, relu6, reshape, reverse, round, rsqrt, scalar, selu, setBackend, sigmoid,
  sign, sin, slice, slice_util, softmax, softplus, split, sqrt, square, squeeze, sub, sum, tanh,
  tensor, tensor1d, tensor2d, tensor3d, tensor4d, tensorScatterUpdate, tidy, tile, transpose,
  unregisterKernel, unsortedSegmentSum, variable, variableGrads, where, zeros, zerosLike,
} = tf;

// The classes above are types too.
export type KernelBackend = Tf.KernelBackend;
export type Tensor<R extends Tf.Rank = Tf.Rank> = Tf.Tensor<R>;
export type Variable<R extends Tf.Rank = Tf.Rank> = Tf.Variable<R>;
export type {
  DataType, GradSaveFunc, KernelConfig, NamedAttrMap, NamedTensorInfoMap, NamedTensorMap, Scalar,
  Tensor1D, Tensor2D, Tensor3D, Tensor4D, TensorContainer, TensorInfo,
} from '@tensorflow/tfjs-core';

/**
 * Plain-object view of the ONNX protobuf messages (IR version 10, plus the IR 11 device
 * configuration fields), as decoded by protobufjs with
 * camelCase field names. Optional fields are absent when the file did not set them: presence is
 * kept so that a decoded model re-encodes to the same bytes.
 *
 * int64 fields decode to `Long` (protobufjs uses long.js); use `toNumber` from ./int64.ts to read them.
 */
import type Long from 'long';

export type Int64 = number | Long;

export interface StringStringEntryProto {
  key?: string;
  value?: string;
}

export interface OperatorSetIdProto {
  domain?: string;
  version?: Int64;
}

/** TensorProto.DataType */
export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
  FLOAT8E8M0 = 24,
}

export enum DataLocation {
  DEFAULT = 0,
  EXTERNAL = 1,
}

export interface TensorSegment {
  begin?: Int64;
  end?: Int64;
}

export interface TensorProto {
  dims?: Int64[];
  dataType?: number;
  segment?: TensorSegment;
  floatData?: number[];
  int32Data?: number[];
  stringData?: Uint8Array[];
  int64Data?: Int64[];
  name?: string;
  docString?: string;
  rawData?: Uint8Array;
  externalData?: StringStringEntryProto[];
  dataLocation?: DataLocation;
  doubleData?: number[];
  uint64Data?: Int64[];
  metadataProps?: StringStringEntryProto[];
}

export interface SparseTensorProto {
  values?: TensorProto;
  indices?: TensorProto;
  dims?: Int64[];
}

export interface TensorShapeDimension {
  dimValue?: Int64;
  dimParam?: string;
  denotation?: string;
}

export interface TensorShapeProto {
  dim?: TensorShapeDimension[];
}

export interface TypeProto {
  tensorType?: { elemType?: number; shape?: TensorShapeProto };
  sequenceType?: { elemType?: TypeProto };
  mapType?: { keyType?: number; valueType?: TypeProto };
  optionalType?: { elemType?: TypeProto };
  sparseTensorType?: { elemType?: number; shape?: TensorShapeProto };
  opaqueType?: { domain?: string; name?: string };
  denotation?: string;
}

export interface ValueInfoProto {
  name?: string;
  type?: TypeProto;
  docString?: string;
  metadataProps?: StringStringEntryProto[];
}

/** AttributeProto.AttributeType */
export enum AttributeType {
  UNDEFINED = 0,
  FLOAT = 1,
  INT = 2,
  STRING = 3,
  TENSOR = 4,
  GRAPH = 5,
  SPARSE_TENSOR = 11,
  TYPE_PROTO = 13,
  FLOATS = 6,
  INTS = 7,
  STRINGS = 8,
  TENSORS = 9,
  GRAPHS = 10,
  SPARSE_TENSORS = 12,
  TYPE_PROTOS = 14,
}

export interface AttributeProto {
  name?: string;
  refAttrName?: string;
  docString?: string;
  type?: AttributeType;
  f?: number;
  i?: Int64;
  s?: Uint8Array;
  t?: TensorProto;
  g?: GraphProto;
  sparseTensor?: SparseTensorProto;
  tp?: TypeProto;
  floats?: number[];
  ints?: Int64[];
  strings?: Uint8Array[];
  tensors?: TensorProto[];
  graphs?: GraphProto[];
  sparseTensors?: SparseTensorProto[];
  typeProtos?: TypeProto[];
}

/** IR 11: how a node is sharded over devices. */
export interface IntIntListEntryProto {
  key?: Int64;
  value?: Int64[];
}

export interface SimpleShardedDimProto {
  dimValue?: Int64;
  dimParam?: string;
  numShards?: Int64;
}

export interface ShardedDimProto {
  axis?: Int64;
  simpleSharding?: SimpleShardedDimProto[];
}

export interface ShardingSpecProto {
  tensorName?: string;
  device?: Int64[];
  indexToDeviceGroupMap?: IntIntListEntryProto[];
  shardedDim?: ShardedDimProto[];
}

export interface NodeDeviceConfigurationProto {
  configurationId?: string;
  shardingSpec?: ShardingSpecProto[];
  pipelineStage?: number;
}

/** IR 11: a named device configuration of the model. */
export interface DeviceConfigurationProto {
  name?: string;
  numDevices?: number;
  device?: string[];
}

export interface NodeProto {
  input?: string[];
  output?: string[];
  name?: string;
  opType?: string;
  domain?: string;
  overload?: string;
  attribute?: AttributeProto[];
  docString?: string;
  metadataProps?: StringStringEntryProto[];
  deviceConfigurations?: NodeDeviceConfigurationProto[];
}

export interface TensorAnnotation {
  tensorName?: string;
  quantParameterTensorNames?: StringStringEntryProto[];
}

export interface GraphProto {
  node?: NodeProto[];
  name?: string;
  initializer?: TensorProto[];
  sparseInitializer?: SparseTensorProto[];
  docString?: string;
  input?: ValueInfoProto[];
  output?: ValueInfoProto[];
  valueInfo?: ValueInfoProto[];
  quantizationAnnotation?: TensorAnnotation[];
  metadataProps?: StringStringEntryProto[];
}

export interface TrainingInfoProto {
  initialization?: GraphProto;
  algorithm?: GraphProto;
  initializationBinding?: StringStringEntryProto[];
  updateBinding?: StringStringEntryProto[];
}

export interface FunctionProto {
  name?: string;
  input?: string[];
  output?: string[];
  attribute?: string[];
  attributeProto?: AttributeProto[];
  node?: NodeProto[];
  docString?: string;
  opsetImport?: OperatorSetIdProto[];
  domain?: string;
  overload?: string;
  valueInfo?: ValueInfoProto[];
  metadataProps?: StringStringEntryProto[];
}

export interface ModelProto {
  irVersion?: Int64;
  opsetImport?: OperatorSetIdProto[];
  producerName?: string;
  producerVersion?: string;
  domain?: string;
  modelVersion?: Int64;
  docString?: string;
  graph?: GraphProto;
  metadataProps?: StringStringEntryProto[];
  trainingInfo?: TrainingInfoProto[];
  functions?: FunctionProto[];
  configuration?: DeviceConfigurationProto[];
}

/**
 * A decoded model plus what is needed to reach its external data. `baseDir` is the directory that
 * external-data `location`s are relative to (the model file's directory when read from a file).
 */
export interface OnnxModel {
  proto: ModelProto;
  baseDir?: string;
  /** Size in bytes of the encoded model this was decoded from. */
  sourceBytes?: number;
  /** Absolute path of the file this was read from, if any. */
  sourcePath?: string;
}

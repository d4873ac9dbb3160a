/**
 * SR content items (PS3.3 §C.17.3 SR Document Content Module), one variant per Value Type, discriminated on
 * `valueType`. Templates build trees of these; encode.ts turns a tree into dataset items and read.ts walks back.
 */
import type { CodedConcept } from './codes.ts';

/** PS3.3 §C.17.3.2.4 Relationship Type. */
export type RelationshipType =
  | 'CONTAINS'
  | 'HAS OBS CONTEXT'
  | 'HAS CONCEPT MOD'
  | 'HAS PROPERTIES'
  | 'HAS ACQ CONTEXT'
  | 'INFERRED FROM'
  | 'SELECTED FROM';

/** PS3.3 §C.18.6.1.2 (SCOORD) and §C.18.9.1.2 (SCOORD3D) Graphic Type. */
export type GraphicType2D = 'POINT' | 'MULTIPOINT' | 'POLYLINE' | 'CIRCLE' | 'ELLIPSE';
export type GraphicType3D = 'POINT' | 'MULTIPOINT' | 'POLYLINE' | 'POLYGON' | 'ELLIPSE' | 'ELLIPSOID';

type Common = { relationship?: RelationshipType; concept: CodedConcept; children?: ContentItem[] };
/** An IMAGE selected from by a SCOORD, or listed in the Image Library, has no concept name (PS3.3 §C.17.3.2.2). */
type Unnamed = { relationship?: RelationshipType; concept?: CodedConcept; children?: ContentItem[] };

export type ContainerItem = Common & { valueType: 'CONTAINER'; continuity: 'SEPARATE' | 'CONTINUOUS'; templateId?: string };
export type CodeItem = Common & { valueType: 'CODE'; code: CodedConcept };
export type TextItem = Common & { valueType: 'TEXT'; text: string };
export type UidrefItem = Common & { valueType: 'UIDREF'; uid: string };
export type NumItem = Common & { valueType: 'NUM'; value: number; unit: CodedConcept };
export type ImageItem = Unnamed & { valueType: 'IMAGE'; sopClassUID: string; sopInstanceUID: string; frame?: number };
export type ScoordItem = Common & { valueType: 'SCOORD'; graphicType: GraphicType2D; data: number[] };
export type Scoord3DItem = Common & {
  valueType: 'SCOORD3D';
  graphicType: GraphicType3D;
  data: number[];
  frameOfReferenceUID: string;
};

export type ContentItem =
  | ContainerItem
  | CodeItem
  | TextItem
  | UidrefItem
  | NumItem
  | ImageItem
  | ScoordItem
  | Scoord3DItem;

export type ValueType = ContentItem['valueType'];

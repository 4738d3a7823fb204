// Package tfjs converts a TensorFlow.js graph model (model.json and its
// weight shards) into a TensorFlow GraphDef that OpenCV's DNN module reads
// (gocv.ReadNetFromTensorflowBytes).
//
// A tfjs graph model is already a GraphDef, written as protobuf JSON with the
// constants' values moved to binary shards. Converting means putting the
// values back into the Const nodes and splitting the fused kernels TensorFlow's
// grappler made (_FusedConv2D, FusedDepthwiseConv2dNative, _FusedMatMul),
// which OpenCV does not know, into their plain ops.
package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bwsagent/bwsagent/internal/files"
)

// ErrUnsupported is returned (wrapped) for models this converter cannot turn
// into an equivalent GraphDef.
var ErrUnsupported = errors.New("tfjs model not supported")

// Model is a parsed model.json.
type Model struct {
	Format          string          `json:"format"`
	Topology        topology        `json:"modelTopology"`
	WeightsManifest []manifestGroup `json:"weightsManifest"`
}

type topology struct {
	Node     []node `json:"node"`
	Versions struct {
		Producer json.Number `json:"producer"`
	} `json:"versions"`
}

type node struct {
	Name  string               `json:"name"`
	Op    string               `json:"op"`
	Input []string             `json:"input"`
	Attr  map[string]attrValue `json:"attr"`
}

type manifestGroup struct {
	Paths   []string     `json:"paths"`
	Weights []weightSpec `json:"weights"`
}

type weightSpec struct {
	Name         string `json:"name"`
	Shape        []int  `json:"shape"`
	Dtype        string `json:"dtype"`
	Quantization *struct {
		Dtype string  `json:"dtype"`
		Scale float64 `json:"scale"`
		Min   float64 `json:"min"`
	} `json:"quantization"`
}

// attrValue is AttrValue in protobuf's JSON mapping: exactly one field set.
type attrValue struct {
	List   *listValue   `json:"list,omitempty"`
	S      *string      `json:"s,omitempty"` // base64
	I      *json.Number `json:"i,omitempty"` // int64 as a string
	F      *float64     `json:"f,omitempty"`
	B      *bool        `json:"b,omitempty"`
	Type   *string      `json:"type,omitempty"`
	Shape  *shape       `json:"shape,omitempty"`
	Tensor *tensor      `json:"tensor,omitempty"`
}

type listValue struct {
	S     []string      `json:"s,omitempty"`
	I     []json.Number `json:"i,omitempty"`
	F     []float64     `json:"f,omitempty"`
	B     []bool        `json:"b,omitempty"`
	Type  []string      `json:"type,omitempty"`
	Shape []shape       `json:"shape,omitempty"`
}

type shape struct {
	Dim []struct {
		Size json.Number `json:"size"`
	} `json:"dim,omitempty"`
	UnknownRank bool `json:"unknownRank,omitempty"`
}

type tensor struct {
	Dtype       string `json:"dtype"`
	TensorShape shape  `json:"tensorShape"`
}

// Parse reads model.json.
func Parse(modelJSON []byte) (*Model, error) {
	var m Model
	if err := json.Unmarshal(modelJSON, &m); err != nil {
		return nil, fmt.Errorf("parse tfjs model.json: %w", err)
	}
	if m.Format != "graph-model" {
		return nil, fmt.Errorf("%w: format %q, want graph-model", ErrUnsupported, m.Format)
	}
	if len(m.Topology.Node) == 0 {
		return nil, fmt.Errorf("%w: model.json has no graph nodes", ErrUnsupported)
	}
	return &m, nil
}

// ShardPaths lists the weight files model.json refers to, in the order
// Convert wants their contents.
func (m *Model) ShardPaths() []string {
	var out []string
	for _, g := range m.WeightsManifest {
		out = append(out, g.Paths...)
	}
	return out
}

// Convert returns the model as a binary GraphDef. shards are the contents of
// ShardPaths, in order; each manifest group's weights are laid out back to
// back across its shards.
func (m *Model) Convert(shards [][]byte) ([]byte, error) {
	if want := len(m.ShardPaths()); len(shards) != want {
		return nil, fmt.Errorf("tfjs: %d weight shards given, model.json names %d", len(shards), want)
	}
	values, err := m.weights(shards)
	if err != nil {
		return nil, err
	}
	var g []byte
	for _, n := range m.Topology.Node {
		nodes, err := lower(n, values)
		if err != nil {
			return nil, err
		}
		for _, out := range nodes {
			g = protowire.AppendTag(g, 1, protowire.BytesType) // GraphDef.node
			g = protowire.AppendBytes(g, out)
		}
	}
	if p, err := m.Topology.Versions.Producer.Int64(); err == nil {
		var v []byte
		v = protowire.AppendTag(v, 1, protowire.VarintType) // VersionDef.producer
		v = protowire.AppendVarint(v, uint64(p))
		g = protowire.AppendTag(g, 4, protowire.BytesType) // GraphDef.versions
		g = protowire.AppendBytes(g, v)
	}
	return g, nil
}

// constValue is a weight as a Const node carries it.
type constValue struct {
	dtype   string // tfjs dtype after dequantisation: float32, int32, bool
	shape   []int
	content []byte // little-endian, as TensorProto.tensor_content
}

// weights decodes every weight of the manifest, dequantising to its dtype.
func (m *Model) weights(shards [][]byte) (map[string]constValue, error) {
	out := map[string]constValue{}
	k := 0
	for gi, g := range m.WeightsManifest {
		var buf []byte
		for range g.Paths {
			buf = append(buf, shards[k]...)
			k++
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				if d < 0 || (d > 0 && n > math.MaxInt32/d) {
					return nil, fmt.Errorf("tfjs: weight %s has a bad shape %v", w.Name, w.Shape)
				}
				n *= d
			}
			stored := w.Dtype
			if w.Quantization != nil {
				stored = w.Quantization.Dtype
			}
			size, ok := elemSize[stored]
			if !ok {
				return nil, fmt.Errorf("%w: weight %s is stored as %s", ErrUnsupported, w.Name, stored)
			}
			if off+n*size > len(buf) {
				return nil, fmt.Errorf("tfjs: weight group %d ends at byte %d, its shards hold %d", gi, off+n*size, len(buf))
			}
			raw := buf[off : off+n*size]
			off += n * size
			v, err := decode(w, raw, n)
			if err != nil {
				return nil, err
			}
			out[w.Name] = v
		}
		if off != len(buf) {
			return nil, fmt.Errorf("tfjs: weight group %d uses %d bytes, its shards hold %d", gi, off, len(buf))
		}
	}
	return out, nil
}

var elemSize = map[string]int{"float32": 4, "int32": 4, "bool": 1, "uint8": 1, "uint16": 2, "float16": 2}

func decode(w weightSpec, raw []byte, n int) (constValue, error) {
	v := constValue{dtype: w.Dtype, shape: w.Shape}
	if _, ok := tfjsDtypes[w.Dtype]; !ok {
		return v, fmt.Errorf("%w: weight %s has dtype %s", ErrUnsupported, w.Name, w.Dtype)
	}
	q := w.Quantization
	if q == nil {
		v.content = raw
		return v, nil
	}
	if w.Dtype != "float32" && !(w.Dtype == "int32" && q.Dtype != "float16") {
		return v, fmt.Errorf("%w: weight %s quantised from %s", ErrUnsupported, w.Name, w.Dtype)
	}
	v.content = make([]byte, 4*n)
	for i := range n {
		var x float64
		switch q.Dtype {
		case "uint8":
			x = float64(raw[i])*q.Scale + q.Min
		case "uint16":
			x = float64(binary.LittleEndian.Uint16(raw[2*i:]))*q.Scale + q.Min
		case "float16":
			x = float64(halfToFloat(binary.LittleEndian.Uint16(raw[2*i:])))
		default:
			return v, fmt.Errorf("%w: weight %s quantised as %s", ErrUnsupported, w.Name, q.Dtype)
		}
		if w.Dtype == "int32" {
			binary.LittleEndian.PutUint32(v.content[4*i:], uint32(int32(math.Round(x))))
		} else {
			binary.LittleEndian.PutUint32(v.content[4*i:], math.Float32bits(float32(x)))
		}
	}
	return v, nil
}

// halfToFloat widens an IEEE 754 binary16 value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	frac := uint32(h) & 0x3ff
	switch {
	case exp == 0 && frac == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal: value = frac × 2^-24
		f := float32(frac) * float32(math.Pow(2, -24))
		if sign != 0 {
			f = -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | frac<<13)
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | frac<<13)
}

// fusedOps are the kernels grappler fused, and the plain op each starts with.
var fusedOps = map[string]string{
	"_FusedConv2D":                "Conv2D",
	"FusedDepthwiseConv2dNative":  "DepthwiseConv2dNative",
	"_FusedDepthwiseConv2dNative": "DepthwiseConv2dNative",
	"_FusedMatMul":                "MatMul",
}

// activations that may follow the bias in a fused kernel; OpenCV reads each.
var activations = map[string]bool{"Relu": true, "Relu6": true, "Elu": true, "Sigmoid": true, "Tanh": true, "LeakyRelu": true}

// keptAttrs are the attributes of the plain ops; the fused ones' extra
// attributes (fused_ops, num_args, epsilon, device placement) are dropped.
var keptAttrs = map[string][]string{
	"Conv2D":                {"T", "strides", "padding", "data_format", "dilations"},
	"DepthwiseConv2dNative": {"T", "strides", "padding", "data_format", "dilations"},
	"MatMul":                {"T", "transpose_a", "transpose_b"},
}

// lower turns one tfjs node into the encoded NodeDefs that replace it. The
// last one keeps the node's name, so its consumers need no rewiring.
func lower(n node, values map[string]constValue) ([][]byte, error) {
	if n.Op == "Const" {
		v, ok := values[n.Name]
		if !ok {
			return nil, fmt.Errorf("tfjs: Const %s has no weight in the manifest", n.Name)
		}
		return [][]byte{encodeConst(n.Name, v)}, nil
	}
	base, fused := fusedOps[n.Op]
	if !fused {
		b, err := encodeNode(n.Name, n.Op, n.Input, n.Attr)
		return [][]byte{b}, err
	}
	ops, err := listStrings(n.Attr["fused_ops"])
	if err != nil {
		return nil, fmt.Errorf("tfjs: %s: %w", n.Name, err)
	}
	if len(n.Input) < 2 {
		return nil, fmt.Errorf("tfjs: %s %s has %d inputs", n.Op, n.Name, len(n.Input))
	}
	args := n.Input[2:]
	// Only BiasAdd then one activation: other fusions (batch norm, Prelu with
	// an alpha argument, an Add of a residual) would need more inputs.
	if len(ops) == 0 || len(ops) > 2 || ops[0] != "BiasAdd" || len(args) != 1 || (len(ops) == 2 && !activations[ops[1]]) {
		return nil, fmt.Errorf("%w: %s %s fuses %v with %d arguments", ErrUnsupported, n.Op, n.Name, ops, len(args))
	}
	attrs := map[string]attrValue{}
	for _, k := range keptAttrs[base] {
		if v, ok := n.Attr[k]; ok {
			attrs[k] = v
		}
	}
	names := []string{n.Name + "/_" + base, n.Name}
	if len(ops) == 2 {
		names = []string{n.Name + "/_" + base, n.Name + "/_BiasAdd", n.Name}
	}
	var out [][]byte
	add := func(name, op string, inputs []string, attrs map[string]attrValue) error {
		b, err := encodeNode(name, op, inputs, attrs)
		out = append(out, b)
		return err
	}
	if err := add(names[0], base, n.Input[:2], attrs); err != nil {
		return nil, err
	}
	biasAttrs := map[string]attrValue{}
	if t, ok := n.Attr["T"]; ok {
		biasAttrs["T"] = t
	}
	if df, ok := n.Attr["data_format"]; ok {
		biasAttrs["data_format"] = df
	}
	if err := add(names[1], "BiasAdd", []string{names[0], args[0]}, biasAttrs); err != nil {
		return nil, err
	}
	if len(ops) == 2 {
		actAttrs := map[string]attrValue{}
		if t, ok := n.Attr["T"]; ok {
			actAttrs["T"] = t
		}
		if ops[1] == "LeakyRelu" {
			if a, ok := n.Attr["leakyrelu_alpha"]; ok {
				actAttrs["alpha"] = a
			}
		}
		if err := add(names[2], ops[1], []string{names[1]}, actAttrs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func listStrings(v attrValue) ([]string, error) {
	if v.List == nil {
		return nil, nil
	}
	out := make([]string, len(v.List.S))
	for i, s := range v.List.S {
		b, err := decodeString(s)
		if err != nil {
			return nil, fmt.Errorf("fused_ops: %w", err)
		}
		out[i] = string(b)
	}
	return out, nil
}

// decodeString decodes a bytes field of protobuf's JSON mapping (base64).
func decodeString(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("string %q is not base64: %w", s, err)
	}
	return b, nil
}

// TensorFlow's DataType enum (types.proto).
var dataTypes = map[string]uint64{
	"DT_FLOAT": 1, "DT_DOUBLE": 2, "DT_INT32": 3, "DT_UINT8": 4, "DT_INT16": 5, "DT_INT8": 6,
	"DT_STRING": 7, "DT_INT64": 9, "DT_BOOL": 10, "DT_UINT16": 17, "DT_HALF": 19,
}

var tfjsDtypes = map[string]string{"float32": "DT_FLOAT", "int32": "DT_INT32", "bool": "DT_BOOL"}

func encodeConst(name string, v constValue) []byte {
	dt := tfjsDtypes[v.dtype]
	var t []byte
	t = protowire.AppendTag(t, 1, protowire.VarintType) // TensorProto.dtype
	t = protowire.AppendVarint(t, dataTypes[dt])
	t = protowire.AppendTag(t, 2, protowire.BytesType) // tensor_shape
	t = protowire.AppendBytes(t, encodeDims(v.shape))
	t = protowire.AppendTag(t, 4, protowire.BytesType) // tensor_content
	t = protowire.AppendBytes(t, v.content)

	var value, dtype []byte
	value = protowire.AppendTag(value, 8, protowire.BytesType) // AttrValue.tensor
	value = protowire.AppendBytes(value, t)
	dtype = protowire.AppendTag(dtype, 6, protowire.VarintType) // AttrValue.type
	dtype = protowire.AppendVarint(dtype, dataTypes[dt])
	return encodeRaw(name, "Const", nil, []rawAttr{{"dtype", dtype}, {"value", value}})
}

func encodeDims(dims []int) []byte {
	var s []byte
	for _, d := range dims {
		var dim []byte
		dim = protowire.AppendTag(dim, 1, protowire.VarintType) // Dim.size
		dim = protowire.AppendVarint(dim, uint64(int64(d)))
		s = protowire.AppendTag(s, 2, protowire.BytesType) // TensorShapeProto.dim
		s = protowire.AppendBytes(s, dim)
	}
	return s
}

type rawAttr struct {
	key   string
	value []byte // an encoded AttrValue
}

func encodeNode(name, op string, inputs []string, attrs map[string]attrValue) ([]byte, error) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		// Shapes the exporter inferred; OpenCV infers its own.
		if k != "_output_shapes" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys) // deterministic bytes
	raw := make([]rawAttr, 0, len(keys))
	for _, k := range keys {
		v, err := encodeAttr(attrs[k])
		if err != nil {
			return nil, fmt.Errorf("tfjs: %s %s attribute %s: %w", op, name, k, err)
		}
		raw = append(raw, rawAttr{k, v})
	}
	return encodeRaw(name, op, inputs, raw), nil
}

func encodeRaw(name, op string, inputs []string, attrs []rawAttr) []byte {
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.BytesType) // NodeDef.name
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 2, protowire.BytesType) // op
	b = protowire.AppendString(b, op)
	for _, in := range inputs {
		b = protowire.AppendTag(b, 3, protowire.BytesType) // input
		b = protowire.AppendString(b, in)
	}
	for _, a := range attrs {
		var e []byte // map<string, AttrValue> entry
		e = protowire.AppendTag(e, 1, protowire.BytesType)
		e = protowire.AppendString(e, a.key)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, a.value)
		b = protowire.AppendTag(b, 5, protowire.BytesType) // attr
		b = protowire.AppendBytes(b, e)
	}
	return b
}

// encodeAttr writes an AttrValue. Tensors only come from the weights
// (encodeConst): a tensor attribute elsewhere would carry no values.
func encodeAttr(v attrValue) ([]byte, error) {
	var b []byte
	switch {
	case v.List != nil:
		l, err := encodeList(*v.List)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, l)
	case v.S != nil:
		s, err := decodeString(*v.S)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, s)
	case v.I != nil:
		i, err := strconv.ParseInt(string(*v.I), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("integer %q: %w", *v.I, err)
		}
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(i))
	case v.F != nil:
		b = protowire.AppendTag(b, 4, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(float32(*v.F)))
	case v.B != nil:
		b = protowire.AppendTag(b, 5, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(*v.B))
	case v.Type != nil:
		t, ok := dataTypes[*v.Type]
		if !ok {
			return nil, fmt.Errorf("%w: data type %q", ErrUnsupported, *v.Type)
		}
		b = protowire.AppendTag(b, 6, protowire.VarintType)
		b = protowire.AppendVarint(b, t)
	case v.Shape != nil:
		sh, err := encodeShape(*v.Shape)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, sh)
	case v.Tensor != nil:
		return nil, fmt.Errorf("%w: a tensor outside a Const node", ErrUnsupported)
	}
	return b, nil
}

func encodeShape(s shape) ([]byte, error) {
	if s.UnknownRank {
		var b []byte
		b = protowire.AppendTag(b, 3, protowire.VarintType)
		return protowire.AppendVarint(b, 1), nil
	}
	dims := make([]int, len(s.Dim))
	for i, d := range s.Dim {
		n, err := d.Size.Int64()
		if err != nil {
			return nil, fmt.Errorf("shape dimension %q: %w", d.Size, err)
		}
		dims[i] = int(n)
	}
	return encodeDims(dims), nil
}

func encodeList(l listValue) ([]byte, error) {
	var b []byte
	for _, s := range l.S {
		raw, err := decodeString(s)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendBytes(b, raw)
	}
	if len(l.I) > 0 {
		var p []byte
		for _, i := range l.I {
			n, err := i.Int64()
			if err != nil {
				return nil, fmt.Errorf("integer %q: %w", i, err)
			}
			p = protowire.AppendVarint(p, uint64(n))
		}
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	if len(l.F) > 0 {
		var p []byte
		for _, f := range l.F {
			p = protowire.AppendFixed32(p, math.Float32bits(float32(f)))
		}
		b = protowire.AppendTag(b, 4, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	if len(l.B) > 0 {
		var p []byte
		for _, x := range l.B {
			p = protowire.AppendVarint(p, protowire.EncodeBool(x))
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	if len(l.Type) > 0 {
		var p []byte
		for _, t := range l.Type {
			v, ok := dataTypes[t]
			if !ok {
				return nil, fmt.Errorf("%w: data type %q", ErrUnsupported, t)
			}
			p = protowire.AppendVarint(p, v)
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	for _, s := range l.Shape {
		sh, err := encodeShape(s)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, sh)
	}
	return b, nil
}

// maxModelFile bounds what ConvertFile reads of model.json and of each shard
// (tfjs writes 4 MiB shards; the largest model.json we know is ~1 MiB).
const maxModelFile = 64 << 20

// ConvertFile reads model.json and the weight shards beside it and converts
// them (see Convert).
func ConvertFile(path string) ([]byte, error) {
	j, err := files.ReadLimited(path, maxModelFile)
	if err != nil {
		return nil, err
	}
	m, err := Parse(j)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var shards [][]byte
	for _, p := range m.ShardPaths() {
		if p != filepath.Base(p) || p == "." || p == ".." {
			return nil, fmt.Errorf("%s: weight shard %q is not a file beside it", path, p)
		}
		b, err := files.ReadLimited(filepath.Join(filepath.Dir(path), p), maxModelFile)
		if err != nil {
			return nil, err
		}
		shards = append(shards, b)
	}
	g, err := m.Convert(shards)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return g, nil
}

package tfjs

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

func TestHalfToFloat(t *testing.T) {
	for _, c := range []struct {
		h    uint16
		want float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x3555, 0.333251953125},
		{0x7bff, 65504},                  // largest normal
		{0x0400, 6.103515625e-05},        // smallest normal
		{0x0001, 5.960464477539063e-08},  // smallest subnormal
		{0x83ff, -6.097555160522461e-05}, // largest negative subnormal
		{0x7c00, float32(math.Inf(1))},
		{0xfc00, float32(math.Inf(-1))},
	} {
		if got := halfToFloat(c.h); got != c.want {
			t.Errorf("halfToFloat(%#04x) = %g, want %g", c.h, got, c.want)
		}
	}
	if !math.IsNaN(float64(halfToFloat(0x7e00))) {
		t.Error("halfToFloat(0x7e00) is not NaN")
	}
}

// le encodes little-endian values of one type.
func le[T uint16 | uint32 | float32 | int32 | uint8](vs ...T) []byte {
	var b []byte
	for _, v := range vs {
		switch x := any(v).(type) {
		case uint8:
			b = append(b, x)
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, x)
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, x)
		case int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		case float32:
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return b
}

func floats(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestWeights(t *testing.T) {
	for _, c := range []struct {
		name    string
		spec    string // one weight spec as JSON
		shard   []byte
		want    []float32 // float32 weights after dequantisation
		wantRaw []byte    // other dtypes: the bytes kept
		wantErr string
	}{
		{"float32", `{"name":"w","shape":[2],"dtype":"float32"}`, le[float32](1.5, -2), []float32{1.5, -2}, nil, ""},
		{"int32 kept", `{"name":"w","shape":[2],"dtype":"int32"}`, le[int32](-1, 7), nil, le[int32](-1, 7), ""},
		{"uint8 affine", `{"name":"w","shape":[3],"dtype":"float32","quantization":{"dtype":"uint8","scale":0.5,"min":-1}}`,
			le[uint8](0, 2, 255), []float32{-1, 0, 126.5}, nil, ""},
		{"uint16 affine", `{"name":"w","shape":[2],"dtype":"float32","quantization":{"dtype":"uint16","scale":0.25,"min":1}}`,
			le[uint16](0, 1000), []float32{1, 251}, nil, ""},
		{"float16", `{"name":"w","shape":[2,1],"dtype":"float32","quantization":{"dtype":"float16"}}`,
			le[uint16](0x3c00, 0xc000), []float32{1, -2}, nil, ""},
		{"uint8 to int32", `{"name":"w","shape":[2],"dtype":"int32","quantization":{"dtype":"uint8","scale":1,"min":-3}}`,
			le[uint8](0, 5), nil, le[int32](-3, 2), ""},
		{"empty tensor", `{"name":"w","shape":[0,4],"dtype":"float32"}`, nil, []float32{}, nil, ""},
		{"shard too short", `{"name":"w","shape":[3],"dtype":"float32"}`, le[float32](1, 2), nil, nil, "ends at byte 12"},
		{"shard too long", `{"name":"w","shape":[1],"dtype":"float32"}`, le[float32](1, 2), nil, nil, "uses 4 bytes"},
		{"string weights", `{"name":"w","shape":[1],"dtype":"string"}`, []byte{0}, nil, nil, "stored as string"},
		{"uint8 weights", `{"name":"w","shape":[1],"dtype":"uint8"}`, []byte{0}, nil, nil, "has dtype uint8"},
		{"negative dim", `{"name":"w","shape":[-1],"dtype":"float32"}`, nil, nil, nil, "bad shape"},
		{"overflowing shape", `{"name":"w","shape":[65536,65536,65536],"dtype":"float32"}`, nil, nil, nil, "bad shape"},
		{"float16 to int32", `{"name":"w","shape":[1],"dtype":"int32","quantization":{"dtype":"float16"}}`, le[uint16](0), nil, nil, "quantised from int32"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var w weightSpec
			if err := json.Unmarshal([]byte(c.spec), &w); err != nil {
				t.Fatal(err)
			}
			m := &Model{WeightsManifest: []manifestGroup{{Paths: []string{"a.bin"}, Weights: []weightSpec{w}}}}
			got, err := m.weights([][]byte{c.shard})
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := got["w"]
			if c.wantRaw != nil {
				if !slices.Equal(v.content, c.wantRaw) {
					t.Fatalf("content = %v, want %v", v.content, c.wantRaw)
				}
				return
			}
			if f := floats(v.content); !slices.Equal(f, c.want) {
				t.Fatalf("values = %v, want %v", f, c.want)
			}
		})
	}
}

func TestWeightsAcrossShards(t *testing.T) {
	// tfjs splits a group's bytes into shards regardless of weight borders.
	m := &Model{WeightsManifest: []manifestGroup{
		{Paths: []string{"g1-1.bin", "g1-2.bin"}, Weights: []weightSpec{{Name: "a", Shape: []int{1}, Dtype: "float32"}, {Name: "b", Shape: []int{2}, Dtype: "float32"}}},
		{Paths: []string{"g2.bin"}, Weights: []weightSpec{{Name: "c", Shape: []int{1}, Dtype: "float32"}}},
	}}
	all := le[float32](1, 2, 3)
	got, err := m.weights([][]byte{all[:6], all[6:], le[float32](4)})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]float32{"a": {1}, "b": {2, 3}, "c": {4}} {
		if f := floats(got[name].content); !slices.Equal(f, want) {
			t.Errorf("%s = %v, want %v", name, f, want)
		}
	}
}

// decoded is a NodeDef read back from the converter's bytes.
type decoded struct {
	name, op string
	inputs   []string
	attrs    map[string][]byte // encoded AttrValue
}

func decodeGraph(t *testing.T, g []byte) []decoded {
	t.Helper()
	var nodes []decoded
	for _, f := range fields(t, g) {
		if f.num != 1 {
			continue
		}
		n := decoded{attrs: map[string][]byte{}}
		for _, nf := range fields(t, f.bytes) {
			switch nf.num {
			case 1:
				n.name = string(nf.bytes)
			case 2:
				n.op = string(nf.bytes)
			case 3:
				n.inputs = append(n.inputs, string(nf.bytes))
			case 5:
				var key string
				var val []byte
				for _, ef := range fields(t, nf.bytes) {
					if ef.num == 1 {
						key = string(ef.bytes)
					} else {
						val = ef.bytes
					}
				}
				n.attrs[key] = val
			}
		}
		nodes = append(nodes, n)
	}
	return nodes
}

type field struct {
	num   protowire.Number
	bytes []byte // length-delimited fields
	value uint64 // varint and fixed32 fields
}

func fields(t *testing.T, b []byte) []field {
	t.Helper()
	var out []field
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		f := field{num: num}
		switch typ {
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			f.value, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var v uint32
			v, n = protowire.ConsumeFixed32(b)
			f.value = uint64(v)
		default:
			t.Fatalf("unexpected wire type %v", typ)
		}
		if n < 0 {
			t.Fatalf("bad field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		out = append(out, f)
	}
	return out
}

func fusedNode(op string, inputs []string, fused ...string) node {
	list := &listValue{}
	for _, f := range fused {
		list.S = append(list.S, base64.StdEncoding.EncodeToString([]byte(f)))
	}
	dt, pad := "DT_FLOAT", base64.StdEncoding.EncodeToString([]byte("SAME"))
	f := 0.2
	return node{Name: "n", Op: op, Input: inputs, Attr: map[string]attrValue{
		"fused_ops":       {List: list},
		"T":               {Type: &dt},
		"padding":         {S: &pad},
		"strides":         {List: &listValue{I: []json.Number{"1", "2", "2", "1"}}},
		"leakyrelu_alpha": {F: &f},
	}}
}

func TestLowerFused(t *testing.T) {
	for _, c := range []struct {
		name    string
		n       node
		want    []string // op:name<-inputs
		wantErr error
	}{
		{"conv bias relu", fusedNode("_FusedConv2D", []string{"x", "w", "b"}, "BiasAdd", "Relu"),
			[]string{"Conv2D:n/_Conv2D<-x,w", "BiasAdd:n/_BiasAdd<-n/_Conv2D,b", "Relu:n<-n/_BiasAdd"}, nil},
		{"conv bias", fusedNode("_FusedConv2D", []string{"x", "w", "b"}, "BiasAdd"),
			[]string{"Conv2D:n/_Conv2D<-x,w", "BiasAdd:n<-n/_Conv2D,b"}, nil},
		{"depthwise bias relu6", fusedNode("FusedDepthwiseConv2dNative", []string{"x", "w", "b"}, "BiasAdd", "Relu6"),
			[]string{"DepthwiseConv2dNative:n/_DepthwiseConv2dNative<-x,w", "BiasAdd:n/_BiasAdd<-n/_DepthwiseConv2dNative,b", "Relu6:n<-n/_BiasAdd"}, nil},
		{"matmul bias leaky", fusedNode("_FusedMatMul", []string{"x", "w", "b"}, "BiasAdd", "LeakyRelu"),
			[]string{"MatMul:n/_MatMul<-x,w", "BiasAdd:n/_BiasAdd<-n/_MatMul,b", "LeakyRelu:n<-n/_BiasAdd"}, nil},
		{"batch norm fusion", fusedNode("_FusedConv2D", []string{"x", "w", "s", "o", "m", "v"}, "FusedBatchNorm"), nil, ErrUnsupported},
		{"prelu fusion", fusedNode("_FusedConv2D", []string{"x", "w", "b", "alpha"}, "BiasAdd", "Prelu"), nil, ErrUnsupported},
		{"no fused ops", fusedNode("_FusedMatMul", []string{"x", "w", "b"}), nil, ErrUnsupported},
		{"too few inputs", fusedNode("_FusedMatMul", []string{"x"}, "BiasAdd"), nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := lower(c.n, nil)
			if c.want == nil {
				if err == nil || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			var g []byte
			for _, b := range out {
				g = protowire.AppendTag(g, 1, protowire.BytesType)
				g = protowire.AppendBytes(g, b)
			}
			nodes := decodeGraph(t, g)
			for _, n := range nodes {
				got = append(got, fmt.Sprintf("%s:%s<-%s", n.op, n.name, strings.Join(n.inputs, ",")))
				if _, ok := n.attrs["fused_ops"]; ok {
					t.Errorf("%s keeps fused_ops", n.name)
				}
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("nodes\n got %v\nwant %v", got, c.want)
			}
			if _, ok := nodes[0].attrs["strides"]; !ok && nodes[0].op != "MatMul" {
				t.Errorf("%s lost its strides", nodes[0].name)
			}
			if last := nodes[len(nodes)-1]; last.op == "LeakyRelu" {
				a := fields(t, last.attrs["alpha"])
				if len(a) != 1 || math.Float32frombits(uint32(a[0].value)) != 0.2 {
					t.Errorf("LeakyRelu alpha = %v, want 0.2", a)
				}
			}
		})
	}
}

// tinyModel is a graph model.json with one fused 1×1 convolution (weight 2,
// bias −1, ReLU) and a fused dense layer, the patterns grappler writes.
const tinyModel = `{
 "format": "graph-model",
 "modelTopology": {"node": [
  {"name": "x", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"}, "shape": {"shape": {"dim": [{"size": "-1"}, {"size": "2"}, {"size": "2"}, {"size": "1"}]}}}},
  {"name": "w", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}, {"size": "1"}, {"size": "1"}, {"size": "1"}]}}}}},
  {"name": "b", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "1"}]}}}}},
  {"name": "conv", "op": "_FusedConv2D", "input": ["x", "w", "b"], "device": "/device:CPU:0", "attr": {
   "T": {"type": "DT_FLOAT"}, "num_args": {"i": "1"}, "epsilon": {"f": 0}, "use_cudnn_on_gpu": {"b": true},
   "strides": {"list": {"i": ["1", "1", "1", "1"]}}, "dilations": {"list": {"i": ["1", "1", "1", "1"]}},
   "padding": {"s": "VkFMSUQ="}, "data_format": {"s": "TkhXQw=="}, "explicit_paddings": {"list": {}},
   "fused_ops": {"list": {"s": ["Qmlhc0FkZA==", "UmVsdQ=="]}}}},
  {"name": "shape", "op": "Const", "attr": {"dtype": {"type": "DT_INT32"}, "value": {"tensor": {"dtype": "DT_INT32", "tensorShape": {"dim": [{"size": "2"}]}}}}},
  {"name": "flat", "op": "Reshape", "input": ["conv", "shape"], "attr": {"T": {"type": "DT_FLOAT"}, "Tshape": {"type": "DT_INT32"}}},
  {"name": "dw", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "4"}, {"size": "2"}]}}}}},
  {"name": "db", "op": "Const", "attr": {"dtype": {"type": "DT_FLOAT"}, "value": {"tensor": {"dtype": "DT_FLOAT", "tensorShape": {"dim": [{"size": "2"}]}}}}},
  {"name": "dense", "op": "_FusedMatMul", "input": ["flat", "dw", "db"], "attr": {
   "T": {"type": "DT_FLOAT"}, "transpose_a": {"b": false}, "transpose_b": {"b": false}, "num_args": {"i": "1"}, "epsilon": {"f": 0},
   "fused_ops": {"list": {"s": ["Qmlhc0FkZA=="]}}}},
  {"name": "Identity", "op": "Identity", "input": ["dense"], "attr": {"T": {"type": "DT_FLOAT"}}}
 ], "versions": {"producer": 1395}},
 "weightsManifest": [{"paths": ["tiny.bin"], "weights": [
  {"name": "w", "shape": [1, 1, 1, 1], "dtype": "float32", "quantization": {"dtype": "float16", "original_dtype": "float32"}},
  {"name": "b", "shape": [1], "dtype": "float32"},
  {"name": "shape", "shape": [2], "dtype": "int32"},
  {"name": "dw", "shape": [4, 2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1}},
  {"name": "db", "shape": [2], "dtype": "float32"}
 ]}]
}`

// tinyShard holds tinyModel's weights: w = 2 (float16), b = −1,
// shape = [−1, 4], dw = [[1,0],[0,1],[1,0],[0,1]] (uint8: (q·0.5)−1),
// db = [0.5, 0].
func tinyShard() []byte {
	b := le[uint16](0x4000)
	b = append(b, le[float32](-1)...)
	b = append(b, le[int32](-1, 4)...)
	b = append(b, le[uint8](4, 2, 2, 4, 4, 2, 2, 4)...)
	return append(b, le[float32](0.5, 0)...)
}

// TestConvertRuns loads the converted tiny graph in OpenCV and checks its
// output against the arithmetic: relu(2x−1) per pixel, then the dense layer
// sums pixels 0+2 (+0.5) and 1+3.
func TestConvertRuns(t *testing.T) {
	m, err := Parse([]byte(tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.ShardPaths(); !slices.Equal(got, []string{"tiny.bin"}) {
		t.Fatalf("ShardPaths = %v", got)
	}
	g, err := m.Convert([][]byte{tinyShard()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range decodeGraph(t, g) {
		if strings.HasPrefix(n.op, "_Fused") {
			t.Errorf("fused op %s left in the graph", n.op)
		}
		if _, ok := n.attrs["device"]; ok {
			t.Errorf("%s keeps its device", n.name)
		}
	}
	net, err := gocv.ReadNetFromTensorflowBytes(g)
	if err != nil {
		t.Fatalf("OpenCV rejects the converted graph: %v", err)
	}
	defer net.Close()
	x := []float32{0, 1, 3, 0.25} // row-major 2×2, one channel
	blob := gocv.NewMatWithSizes([]int{1, 1, 2, 2}, gocv.MatTypeCV32F)
	defer blob.Close()
	d, _ := blob.DataPtrFloat32()
	copy(d, x)
	net.SetInput(blob, "")
	out := net.Forward("")
	defer out.Close()
	got, _ := out.DataPtrFloat32()
	relu := func(v float32) float32 { return max(2*v-1, 0) }
	want := []float32{relu(x[0]) + relu(x[2]) + 0.5, relu(x[1]) + relu(x[3])}
	if len(got) != 2 || math.Abs(float64(got[0]-want[0])) > 1e-6 || math.Abs(float64(got[1]-want[1])) > 1e-6 {
		t.Fatalf("output = %v, want %v", got, want)
	}
}

func TestParseRejects(t *testing.T) {
	for _, c := range []struct{ name, json string }{
		{"not json", `{`},
		{"layers model", `{"format":"layers-model","modelTopology":{"node":[{"name":"x","op":"Placeholder"}]}}`},
		{"no nodes", `{"format":"graph-model","modelTopology":{}}`},
	} {
		if _, err := Parse([]byte(c.json)); err == nil {
			t.Errorf("%s: Parse accepted it", c.name)
		}
	}
	m, err := Parse([]byte(tinyModel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Convert(nil); err == nil {
		t.Error("Convert without shards succeeded")
	}
	for _, c := range []struct{ name, from, to, wantErr string }{
		{"string not base64", `"padding": {"s": "VkFMSUQ="}`, `"padding": {"s": "VALID!"}`, "not base64"},
		{"integer not an integer", `"input": ["dense"], "attr": {`, `"input": ["dense"], "attr": {"N": {"i": "1.5"}, `, "integer"},
		{"unknown data type", `"Tshape": {"type": "DT_INT32"}`, `"Tshape": {"type": "DT_QINT8"}`, "DT_QINT8"},
		{"list integer", `"strides": {"list": {"i": ["1", "1", "1", "1"]}}`, `"strides": {"list": {"i": ["1", "2.5"]}}`, "integer"},
		{"shape dimension", `{"size": "-1"}, {"size": "2"}, {"size": "2"}, {"size": "1"}]}}}}`, `{"size": "-1"}, {"size": "2.5"}]}}}}`, "shape dimension"},
		{"not a number", `"num_args": {"i": "1"}`, `"num_args": {"i": "one"}`, "invalid number"},
		{"tensor attribute", `"Tshape": {"type": "DT_INT32"}`, `"Tshape": {"tensor": {"dtype": "DT_INT32"}}`, "tensor outside a Const"},
	} {
		bad := strings.Replace(tinyModel, c.from, c.to, 1)
		if bad == tinyModel {
			t.Fatalf("%s: %q not in tinyModel", c.name, c.from)
		}
		m, err := Parse([]byte(bad))
		if err == nil {
			_, err = m.Convert([][]byte{tinyShard()})
		}
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("%s: err = %v, want one containing %q", c.name, err, c.wantErr)
		}
	}
	noWeight := strings.Replace(tinyModel, `{"name": "db", "shape": [2], "dtype": "float32"}`, `{"name": "other", "shape": [2], "dtype": "float32"}`, 1)
	m, _ = Parse([]byte(noWeight))
	if _, err := m.Convert([][]byte{tinyShard()}); err == nil || !strings.Contains(err.Error(), "Const db") {
		t.Errorf("Const without a weight: err = %v", err)
	}
}

// input is the deterministic NHWC input testdata/reference.js uses.
func input(kind string, size int) []float32 {
	x := make([]float32, size*size*3)
	for i := range x {
		if kind == "A" {
			x[i] = float32((i*37)%256) / 255
		} else {
			x[i] = float32((i*101+7)%256) / 255
		}
	}
	return x
}

// TestParity runs the converted human-models graphs in OpenCV on the inputs
// of testdata/reference.json, whose outputs came from the same graphs in
// tfjs 4.22 (testdata/reference.js).
func TestParity(t *testing.T) {
	raw, err := os.ReadFile("testdata/reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref map[string]map[string][]float64
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for name, size := range map[string]int{"antispoof": 128, "liveness": 32} {
		g, err := ConvertFile(testenv.CandidateModel(t, name))
		if err != nil {
			t.Fatal(err)
		}
		net, err := gocv.ReadNetFromTensorflowBytes(g)
		if err != nil {
			t.Fatalf("%s: OpenCV rejects the converted graph: %v", name, err)
		}
		for _, kind := range []string{"A", "B"} {
			x := input(kind, size)
			blob := gocv.NewMatWithSizes([]int{1, 3, size, size}, gocv.MatTypeCV32F)
			d, _ := blob.DataPtrFloat32()
			for i, v := range x { // NHWC → NCHW
				p, c := i/3, i%3
				d[c*size*size+p] = v
			}
			net.SetInput(blob, "")
			out := net.Forward("")
			got, _ := out.DataPtrFloat32()
			want := ref[name][kind]
			if len(got) != len(want) {
				t.Fatalf("%s %s: %d outputs, want %d", name, kind, len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > 1e-5 {
					t.Errorf("%s %s[%d] = %.7f, tfjs gives %.7f (diff %.1e)", name, kind, i, got[i], want[i], d)
				}
			}
			out.Close()
			blob.Close()
		}
		net.Close()
	}
}

func FuzzConvert(f *testing.F) {
	f.Add([]byte(tinyModel), tinyShard())
	f.Add([]byte(tinyModel), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, modelJSON, shard []byte) {
		m, err := Parse(modelJSON)
		if err != nil {
			return
		}
		shards := make([][]byte, len(m.ShardPaths()))
		if len(shards) > 0 {
			shards[0] = shard
		}
		_, _ = m.Convert(shards)
	})
}

package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// A tiny CBOR tree codec for building invalid vectors byte by byte: it
// keeps map keys in the order given and encodes exactly what it is told,
// including what the package's own encoder would never write.
//
// Values: int64, string, []byte, bool, nil, float64, []any, cborMap,
// cborIndefMap, cborTag, cborWideUint (a non-minimal integer) and cborRaw.

type cborKV struct {
	K string
	V any
}

// cborMap is a definite-length map, encoded in the order of its entries.
type cborMap []cborKV

// cborIndefMap is an indefinite-length map.
type cborIndefMap []cborKV

// cborTag is a tagged value.
type cborTag struct {
	N uint64
	V any
}

// cborWideUint is an unsigned integer written with an 8-byte argument
// whatever its value.
type cborWideUint uint64

// cborRaw is written verbatim.
type cborRaw []byte

func cborHead(major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return []byte{m | byte(n)}
	case n <= math.MaxUint8:
		return []byte{m | 24, byte(n)}
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16([]byte{m | 25}, uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32([]byte{m | 26}, uint32(n))
	}
	return binary.BigEndian.AppendUint64([]byte{m | 27}, n)
}

func treeEncode(v any) []byte {
	var out []byte
	switch v := v.(type) {
	case nil:
		out = []byte{0xf6}
	case bool:
		out = []byte{0xf4}
		if v {
			out = []byte{0xf5}
		}
	case int64:
		if v >= 0 {
			out = cborHead(0, uint64(v))
		} else {
			out = cborHead(1, uint64(-(v + 1)))
		}
	case int:
		return treeEncode(int64(v))
	case cborWideUint:
		out = binary.BigEndian.AppendUint64([]byte{27}, uint64(v))
	case float64:
		out = binary.BigEndian.AppendUint64([]byte{0xfb}, math.Float64bits(v))
	case string:
		out = append(cborHead(3, uint64(len(v))), v...)
	case []byte:
		out = append(cborHead(2, uint64(len(v))), v...)
	case []any:
		out = cborHead(4, uint64(len(v)))
		for _, e := range v {
			out = append(out, treeEncode(e)...)
		}
	case cborMap:
		out = cborHead(5, uint64(len(v)))
		for _, kv := range v {
			out = append(out, treeEncode(kv.K)...)
			out = append(out, treeEncode(kv.V)...)
		}
	case cborIndefMap:
		out = []byte{0xbf}
		for _, kv := range v {
			out = append(out, treeEncode(kv.K)...)
			out = append(out, treeEncode(kv.V)...)
		}
		out = append(out, 0xff)
	case cborTag:
		out = append(cborHead(6, v.N), treeEncode(v.V)...)
	case cborRaw:
		out = append(out, v...)
	default:
		panic(fmt.Sprintf("treeEncode: %T", v))
	}
	return out
}

// treeDecode decodes well-formed, definite-length CBOR (as this package
// writes it) into a tree that keeps map order.
func treeDecode(b []byte) any {
	v, rest := treeDecodeOne(b)
	if len(rest) != 0 {
		panic("treeDecode: trailing bytes")
	}
	return v
}

func treeDecodeOne(b []byte) (any, []byte) {
	major, ai := b[0]>>5, b[0]&0x1f
	b = b[1:]
	var n uint64
	switch {
	case ai < 24:
		n = uint64(ai)
	case ai == 24:
		n, b = uint64(b[0]), b[1:]
	case ai == 25:
		n, b = uint64(binary.BigEndian.Uint16(b)), b[2:]
	case ai == 26:
		n, b = uint64(binary.BigEndian.Uint32(b)), b[4:]
	case ai == 27:
		n, b = binary.BigEndian.Uint64(b), b[8:]
	default:
		panic("treeDecode: unsupported additional information")
	}
	switch major {
	case 0:
		return int64(n), b
	case 1:
		return -1 - int64(n), b
	case 2:
		return append([]byte(nil), b[:n]...), b[n:]
	case 3:
		return string(b[:n]), b[n:]
	case 4:
		list := make([]any, 0, n)
		for i := uint64(0); i < n; i++ {
			var e any
			e, b = treeDecodeOne(b)
			list = append(list, e)
		}
		return list, b
	case 5:
		m := make(cborMap, 0, n)
		for i := uint64(0); i < n; i++ {
			var k, v any
			k, b = treeDecodeOne(b)
			v, b = treeDecodeOne(b)
			m = append(m, cborKV{k.(string), v})
		}
		return m, b
	case 6:
		var v any
		v, b = treeDecodeOne(b)
		return cborTag{n, v}, b
	case 7:
		switch ai {
		case 20:
			return false, b
		case 21:
			return true, b
		case 22:
			return nil, b
		}
	}
	panic("treeDecode: unsupported item")
}

// clone deep-copies a tree so mutations do not leak between vectors.
func clone(v any) any {
	switch v := v.(type) {
	case cborMap:
		out := make(cborMap, len(v))
		for i, kv := range v {
			out[i] = cborKV{kv.K, clone(kv.V)}
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = clone(e)
		}
		return out
	case []byte:
		return append([]byte(nil), v...)
	case cborTag:
		return cborTag{v.N, clone(v.V)}
	}
	return v
}

// index finds key in m, or -1.
func (m cborMap) index(key string) int {
	for i, kv := range m {
		if kv.K == key {
			return i
		}
	}
	return -1
}

// get returns the value at a dotted path ("body.export.max_tier").
func (m cborMap) get(path string) any {
	head, rest, nested := strings.Cut(path, ".")
	i := m.index(head)
	if i < 0 {
		panic("no field " + head)
	}
	if !nested {
		return m[i].V
	}
	return m[i].V.(cborMap).get(rest)
}

// set replaces or adds the value at a dotted path; a new key is inserted
// in canonical (length-first) position.
func (m cborMap) set(path string, v any) cborMap {
	head, rest, nested := strings.Cut(path, ".")
	i := m.index(head)
	if nested {
		m[i].V = m[i].V.(cborMap).set(rest, v)
		return m
	}
	if i >= 0 {
		m[i].V = v
		return m
	}
	m = append(m, cborKV{head, v})
	sort.SliceStable(m, func(a, b int) bool { return lengthFirstLess(m[a].K, m[b].K) })
	return m
}

// del removes the key at a dotted path.
func (m cborMap) del(path string) cborMap {
	head, rest, nested := strings.Cut(path, ".")
	i := m.index(head)
	if nested {
		m[i].V = m[i].V.(cborMap).del(rest)
		return m
	}
	return append(m[:i:i], m[i+1:]...)
}

func lengthFirstLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// recordTree decodes a record's bytes into an ordered tree.
func recordTree(r *Record) cborMap { return treeDecode(r.Bytes()).(cborMap) }

// resign replaces the envelope's sig with key's signature over the rest of
// the map (as encoded by treeEncode) and returns the encoded record.
func resign(env cborMap, key crypto.PrivKey) []byte {
	unsigned := clone(env).(cborMap)
	if unsigned.index("sig") >= 0 {
		unsigned = unsigned.del("sig")
	}
	msg := append([]byte(SignatureDomain+"\x00"), treeEncode(unsigned)...)
	sig, err := key.Sign(msg)
	if err != nil {
		panic(err)
	}
	if env.index("sig") >= 0 {
		env = env.set("sig", sig)
	}
	return treeEncode(env)
}

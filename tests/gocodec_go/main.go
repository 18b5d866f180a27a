// Command gocodec writes Go's own encodings of the values corral.gocodec encodes, for tests/test_gocodec.py.
//
// stdin: a JSON array of requests, one of
//
//	{"f64": "<16 hex digits: the float64's bits>"}  -> json.Marshal and strconv.FormatFloat forms
//	{"f32": "<8 hex digits: the float32's bits>"}   -> json.Marshal and strconv.FormatFloat forms at 32 bits
//	{"str": "..."}                                  -> json.Marshal, strconv.Quote, strconv.QuoteToASCII
//	{"rune": 233}                                   -> strconv.QuoteRune, strconv.QuoteRuneToASCII
//	{"json": <any JSON>}                            -> json.Marshal of the value decoded into an interface{}
//	{"unix_nano": 1, "offset_s": 3600}              -> json.Marshal of that time.Time in a fixed zone
//
// stdout: a JSON array with one object of named results per request.
package main

import (
	"encoding/json"
	"math"
	"os"
	"strconv"
	"time"
)

type request struct {
	F64      *string         `json:"f64"`
	F32      *string         `json:"f32"`
	Str      *string         `json:"str"`
	Rune     *int64          `json:"rune"`
	JSON     json.RawMessage `json:"json"`
	UnixNano *int64          `json:"unix_nano"`
	OffsetS  int             `json:"offset_s"`
}

func marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "error: " + err.Error()
	}
	return string(b)
}

func floatForms(f float64, bits int) map[string]string {
	out := map[string]string{"json": ""}
	if bits == 32 {
		out["json"] = marshal(float32(f))
	} else {
		out["json"] = marshal(f)
	}
	for _, verb := range []byte{'e', 'f', 'g', 'G'} {
		for _, prec := range []int{-1, 0, 3, 17} {
			if bits == 32 && prec != -1 {
				continue
			}
			out[string(verb)+strconv.Itoa(prec)] = strconv.FormatFloat(f, verb, prec, bits)
		}
	}
	return out
}

func main() {
	var reqs []request
	if err := json.NewDecoder(os.Stdin).Decode(&reqs); err != nil {
		panic(err)
	}
	results := make([]map[string]string, 0, len(reqs))
	for _, r := range reqs {
		switch {
		case r.F64 != nil:
			n, err := strconv.ParseUint(*r.F64, 16, 64)
			if err != nil {
				panic(err)
			}
			results = append(results, floatForms(math.Float64frombits(n), 64))
		case r.F32 != nil:
			n, err := strconv.ParseUint(*r.F32, 16, 32)
			if err != nil {
				panic(err)
			}
			results = append(results, floatForms(float64(math.Float32frombits(uint32(n))), 32))
		case r.Str != nil:
			results = append(results, map[string]string{
				"json": marshal(*r.Str), "quote": strconv.Quote(*r.Str), "ascii": strconv.QuoteToASCII(*r.Str),
			})
		case r.Rune != nil:
			results = append(results, map[string]string{
				"quote": strconv.QuoteRune(rune(*r.Rune)), "ascii": strconv.QuoteRuneToASCII(rune(*r.Rune)),
			})
		case r.JSON != nil:
			var v any
			if err := json.Unmarshal(r.JSON, &v); err != nil {
				panic(err)
			}
			results = append(results, map[string]string{"json": marshal(v)})
		case r.UnixNano != nil:
			t := time.Unix(0, *r.UnixNano).In(time.FixedZone("", r.OffsetS))
			results = append(results, map[string]string{"json": marshal(t)})
		default:
			panic("empty request")
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		panic(err)
	}
}

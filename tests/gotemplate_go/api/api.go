// Package api mirrors the Ollama API types that chat templates are executed on (Message, Tool, ...),
// with the same JSON tags and String methods, so that the differential test renders the same data
// shapes as Ollama does. It is test scaffolding for corral, written for this purpose.
package api

import (
	"encoding/json"
	"fmt"
)

type ImageData []byte

type Message struct {
	Role       string      `json:"role"`
	Content    string      `json:"content"`
	Thinking   string      `json:"thinking,omitempty"`
	Images     []ImageData `json:"images,omitempty"`
	ToolCalls  []ToolCall  `json:"tool_calls,omitempty"`
	ToolName   string      `json:"tool_name,omitempty"`
	ToolCallID string      `json:"tool_call_id,omitempty"`
}

type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Function ToolCallFunction `json:"function"`
}

type ToolCallFunction struct {
	Index     int                       `json:"index,omitempty"`
	Name      string                    `json:"name"`
	Arguments ToolCallFunctionArguments `json:"arguments"`
}

type ToolCallFunctionArguments map[string]any

func (t *ToolCallFunctionArguments) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type Tools []Tool

func (t Tools) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type Tool struct {
	Type     string       `json:"type"`
	Items    any          `json:"items,omitempty"`
	Function ToolFunction `json:"function"`
}

func (t Tool) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type ToolFunction struct {
	Name        string                 `json:"name"`
	Description string                 `json:"description,omitempty"`
	Parameters  ToolFunctionParameters `json:"parameters"`
}

func (t *ToolFunction) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type ToolFunctionParameters struct {
	Type       string            `json:"type"`
	Defs       any               `json:"$defs,omitempty"`
	Items      any               `json:"items,omitempty"`
	Required   []string          `json:"required,omitempty"`
	Properties ToolPropertiesMap `json:"properties"`
}

func (t *ToolFunctionParameters) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type ToolPropertiesMap map[string]ToolProperty

func (t ToolPropertiesMap) String() string {
	b, _ := json.Marshal(t)
	return string(b)
}

type ToolProperty struct {
	AnyOf       []ToolProperty    `json:"anyOf,omitempty"`
	Type        PropertyType      `json:"type,omitempty"`
	Items       any               `json:"items,omitempty"`
	Description string            `json:"description,omitempty"`
	Enum        []any             `json:"enum,omitempty"`
	Properties  ToolPropertiesMap `json:"properties,omitempty"`
	Required    []string          `json:"required,omitempty"`
}

var tsTypes = map[string]string{
	"string": "string", "number": "number", "integer": "number", "boolean": "boolean",
	"array": "any[]", "object": "Record<string, any>", "null": "null",
}

func tsType(t string) string {
	if s, ok := tsTypes[t]; ok {
		return s
	}
	return "any"
}

func join(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += " | "
		}
		out += p
	}
	return out
}

// ToTypeScriptType follows Ollama's api.ToolProperty.ToTypeScriptType.
func (tp ToolProperty) ToTypeScriptType() string {
	if len(tp.AnyOf) > 0 {
		var types []string
		for _, p := range tp.AnyOf {
			types = append(types, p.ToTypeScriptType())
		}
		return join(types)
	}
	if len(tp.Type) == 0 {
		return "any"
	}
	var types []string
	for _, t := range tp.Type {
		types = append(types, tsType(t))
	}
	return join(types)
}

type PropertyType []string

func (pt *PropertyType) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err == nil {
		*pt = []string{s}
		return nil
	}
	var a []string
	if err := json.Unmarshal(data, &a); err != nil {
		return err
	}
	*pt = a
	return nil
}

func (pt PropertyType) MarshalJSON() ([]byte, error) {
	if len(pt) == 1 {
		return json.Marshal(pt[0])
	}
	return json.Marshal([]string(pt))
}

func (pt PropertyType) String() string {
	if len(pt) == 0 {
		return ""
	}
	if len(pt) == 1 {
		return pt[0]
	}
	return fmt.Sprintf("%v", []string(pt))
}

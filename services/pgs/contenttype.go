package pgs

import (
	"path"
	"strings"
)

// contentTypes maps file extensions to the Content-Type a site's file is served with. Text
// types get "; charset=utf-8" (see contentType). Extensions not listed are served as
// application/octet-stream: never sniffed, so an upload cannot turn into HTML by its content.
var contentTypes = map[string]string{
	// Documents and code.
	".html":        "text/html",
	".htm":         "text/html",
	".xhtml":       "application/xhtml+xml",
	".css":         "text/css",
	".js":          "text/javascript",
	".mjs":         "text/javascript",
	".cjs":         "text/javascript",
	".json":        "application/json",
	".jsonld":      "application/ld+json",
	".map":         "application/json",
	".webmanifest": "application/manifest+json",
	".wasm":        "application/wasm",
	".xml":         "application/xml",
	".rss":         "application/rss+xml",
	".atom":        "application/atom+xml",
	".txt":         "text/plain",
	".md":          "text/markdown",
	".markdown":    "text/markdown",
	".csv":         "text/csv",
	".tsv":         "text/tab-separated-values",
	".ics":         "text/calendar",
	".vtt":         "text/vtt",
	".yaml":        "application/yaml",
	".yml":         "application/yaml",
	".toml":        "application/toml",
	".pdf":         "application/pdf",
	".epub":        "application/epub+zip",
	".zip":         "application/zip",
	".gz":          "application/gzip",
	".tgz":         "application/gzip",
	".tar":         "application/x-tar",
	".wgsl":        "text/wgsl",
	".gltf":        "model/gltf+json",
	".glb":         "model/gltf-binary",
	// Images.
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".apng": "image/apng",
	".jpg":  "image/jpeg",
	".jpeg": "image/jpeg",
	".gif":  "image/gif",
	".webp": "image/webp",
	".avif": "image/avif",
	".ico":  "image/x-icon",
	".bmp":  "image/bmp",
	".tif":  "image/tiff",
	".tiff": "image/tiff",
	// Fonts.
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".otf":   "font/otf",
	".eot":   "application/vnd.ms-fontobject",
	// Audio and video.
	".mp4":  "video/mp4",
	".m4v":  "video/mp4",
	".webm": "video/webm",
	".ogv":  "video/ogg",
	".mov":  "video/quicktime",
	".mp3":  "audio/mpeg",
	".m4a":  "audio/mp4",
	".aac":  "audio/aac",
	".ogg":  "audio/ogg",
	".oga":  "audio/ogg",
	".opus": "audio/opus",
	".wav":  "audio/wav",
	".flac": "audio/flac",
}

// contentType is the Content-Type of a file by its name's extension (case-insensitive).
func contentType(name string) string {
	return contentTypeHeader(name)[0]
}

// contentTypeHeader is the Content-Type header value of a file called name, made once per
// type: shared by every response, never changed in place.
func contentTypeHeader(name string) []string {
	if v, ok := contentTypeHeaders[strings.ToLower(path.Ext(name))]; ok {
		return v
	}
	return octetStream
}

var (
	octetStream        = []string{"application/octet-stream"}
	contentTypeHeaders = func() map[string][]string {
		m := make(map[string][]string, len(contentTypes))
		for ext, ct := range contentTypes {
			if textual(ct) {
				ct += "; charset=utf-8"
			}
			m[ext] = []string{ct}
		}
		return m
	}()
)

// textual reports whether a type is text a browser decodes with a charset.
func textual(ct string) bool {
	switch {
	case strings.HasPrefix(ct, "text/"):
		return true
	case strings.HasSuffix(ct, "+xml"), strings.HasSuffix(ct, "+json"):
		return true
	}
	switch ct {
	case "application/json", "application/xml", "application/yaml", "application/toml":
		return true
	}
	return false
}

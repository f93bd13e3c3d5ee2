package policy

import "github.com/hashicorp/hcl/v2"

var declaredSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "pool", LabelNames: []string{"name"}}, {Type: "service", LabelNames: []string{"name"}}}}

// Declared lists the names of the pools and services that files declare (top-level pool
// and service blocks with one label, names as written), without compiling anything. The
// policy store uses it to tell the operator's objects (read-only through the API) from
// managed ones. It parses as Load does (the fast subset parser, chunks in parallel), so
// a policy of 100,000 services costs a fraction of a second, not the seconds and
// hundreds of megabytes a plain hclsyntax parse of the same files would. What does not
// parse is skipped: Load reports it.
func Declared(files []File) (pools, services []string) {
	for _, p := range parse(files) {
		for _, body := range p.Bodies {
			// PartialContent keeps only blocks of the schema's types with one label.
			content, _, _ := body.PartialContent(declaredSchema)
			for _, b := range content.Blocks {
				if b.Type == "pool" {
					pools = append(pools, b.Labels[0])
				} else {
					services = append(services, b.Labels[0])
				}
			}
		}
	}
	return pools, services
}

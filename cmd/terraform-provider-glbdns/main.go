// Command terraform-provider-glbdns is the glbdns Terraform provider's plugin binary.
// Terraform (or OpenTofu) starts it; run with -debug to start it by hand for a debugger
// and pass the printed TF_REATTACH_PROVIDERS to terraform.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/glbdns/glbdns/terraform"
)

// Version is set at link time: go build -ldflags "-X main.Version=1.2.3".
var Version = "dev"

func main() {
	debug := flag.Bool("debug", false, "start the provider in debug mode, for debuggers such as delve")
	flag.Parse()
	err := providerserver.Serve(context.Background(), terraform.New(Version), providerserver.ServeOpts{
		Address: "registry.terraform.io/glbdns/glbdns",
		Debug:   *debug,
	})
	if err != nil {
		log.Fatal(err)
	}
}

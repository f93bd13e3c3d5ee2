// Package hclparse parses HCL configuration files into hclsyntax's AST, faster than
// hclsyntax alone for the large, plain files that generated policies are.
//
// The contract is "the same AST as hclsyntax": every body ParseConfig and ParseFiles
// return is exactly what hclsyntax.ParseConfig returns for the same bytes (the same
// *hclsyntax.Body nodes, values and ranges), and every diagnostic is hclsyntax's own.
// Callers decode the bodies as they would decode hclsyntax's, and cannot tell which
// parser built them. Two things make it faster, and neither may change a result:
//
//   - A subset parser (fastparse.go) builds the AST directly for the plain HCL that
//     policies are mostly written in: quoted labels, one attribute a line, literal strings,
//     whole numbers, booleans, one-line lists, whole-line comments. hclsyntax first lexes
//     a file into a slice of 96-byte tokens; for 50,000 members that is some 600 MB
//     allocated and two-thirds of the load time. Anything outside the subset, and so
//     every file with an error, is parsed by hclsyntax itself.
//   - ParseFiles cuts a large file into chunks at top-level blocks and parses the files
//     and chunks concurrently. A chunked file is used only when every chunk parsed
//     cleanly and holds blocks alone, where the chunks' ASTs are exactly the whole
//     file's; otherwise the file is parsed again whole, so diagnostics never depend on
//     where a cut fell.
//
// TestFastParseSame and FuzzFastParseSame compare the subset parser's AST with
// hclsyntax's; TestParseFilesChunks compares chunked parses with whole ones, and the
// policy package's golden tests load every case both ways.
//
// The package knows nothing of the policy language: it takes names and bytes and returns
// bodies. Decoding them against schemas (and the schema fast path) is policy's.
package hclparse

package api

// OpenAPIDocument is the embedded OpenAPI description, for the tests of
// package api_test.
var OpenAPIDocument = openAPI

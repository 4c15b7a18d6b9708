package main

import "github.com/stateguard/stateguard/pkg/runtime/service"

func main() { service.Main(cli) }

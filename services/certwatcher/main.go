package main

import (
	"github.com/stateguard/stateguard/pkg/events/service"

	"github.com/stateguard/stateguard/services/certwatcher/internal/app"
)

func main() { service.Main(app.Run) }

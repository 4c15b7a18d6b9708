module example.com/sampleapp

go 1.26.0

// A Go client of the catalog, from the exported .proto by protoc-gen-go and
// protoc-gen-go-grpc: create, get, list, a missing product, and the first
// message of a server stream, printed as JSON.
//
//	go run . 127.0.0.1:50051 "$TOKEN"
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogv1 "twofold.example/catalog/v1"
)

const missingID = 987654321 // no such product: the catalog answers NOT_FOUND

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: catalog-client HOST:PORT TOKEN")
		os.Exit(2)
	}
	out, err := callCatalog(os.Args[1], os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func callCatalog(target, token string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Plaintext HTTP/2 to `twofold serve`'s gRPC port (WithInsecure is the
	// spelling grpc-go 1.33, Debian's, knows; later ones also take
	// WithTransportCredentials(insecure.NewCredentials())).
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	catalog := catalogv1.NewCatalogServiceClient(conn)
	// The writes need a bearer token; reads need none.
	auth := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	category := fmt.Sprintf("go-%d", time.Now().UnixNano())

	product, err := catalog.CreateProduct(auth, &catalogv1.CreateProductRequest{
		Product: &catalogv1.NewProduct{
			Name: "Kettle", Price: "24.50", Category: category, Tags: []string{"kitchen"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("CreateProduct: %w", err)
	}
	got, err := catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Id: product.Id})
	if err != nil {
		return nil, fmt.Errorf("GetProduct: %w", err)
	}
	pageSize := int32(10) // proto3 optional: a pointer
	page, err := catalog.ListProducts(ctx, &catalogv1.ListProductsRequest{
		Category: &category, PageSize: &pageSize,
	})
	if err != nil {
		return nil, fmt.Errorf("ListProducts: %w", err)
	}
	listed := []int64{}
	for _, p := range page.Products {
		listed = append(listed, p.Id)
	}

	// An error is a *status.Status with the code the server chose.
	_, err = catalog.GetProduct(ctx, &catalogv1.GetProductRequest{Id: missingID})
	missing := status.Convert(err)

	change, err := firstPriceChange(ctx, auth, catalog, product)
	if err != nil {
		return nil, fmt.Errorf("WatchPrices: %w", err)
	}
	return map[string]any{
		"created": map[string]any{"id": product.Id, "name": product.Name, "category": product.Category},
		"got": map[string]any{
			"id": got.Id, "name": got.Name, "price": got.Price, "tags": got.Tags,
			"etag": got.Etag, "updated": got.UpdatedAt.AsTime().Format(time.RFC3339Nano),
		},
		"listed":   listed,
		"missing":  map[string]any{"code": missing.Code().String(), "message": missing.Message()},
		"notFound": missing.Code() == codes.NotFound,
		"change": map[string]any{
			"product_id": change.ProductId, "old_price": change.OldPrice, "new_price": change.NewPrice,
		},
	}, nil
}

// firstPriceChange opens WatchPrices on the product's category and changes
// the product's price until the stream's first message arrives: a change
// made before the server has subscribed is not seen, and nothing tells the
// client when it has, so it keeps writing (a new price each time) instead of
// guessing how long to wait.
func firstPriceChange(
	ctx, auth context.Context, catalog catalogv1.CatalogServiceClient, product *catalogv1.Product,
) (*catalogv1.PriceChange, error) {
	watchCtx, stop := context.WithCancel(ctx)
	defer stop() // cancelling is how a client ends this stream: it never ends by itself
	stream, err := catalog.WatchPrices(watchCtx, &catalogv1.WatchPricesRequest{Category: product.Category})
	if err != nil {
		return nil, err
	}
	received := make(chan *catalogv1.PriceChange, 1)
	failed := make(chan error, 1)
	go func() {
		change, err := stream.Recv()
		if err != nil {
			failed <- err
			return
		}
		received <- change
	}()
	ticker := time.NewTicker(200 * time.Millisecond)
	defer ticker.Stop()
	for cents := 2500; ; cents++ {
		price := fmt.Sprintf("%d.%02d", cents/100, cents%100)
		_, err := catalog.UpdateProduct(auth, &catalogv1.UpdateProductRequest{
			Id: product.Id, Product: &catalogv1.ProductPatch{Price: &price}, UpdateMask: "price",
		})
		if err != nil {
			return nil, fmt.Errorf("UpdateProduct: %w", err)
		}
		select {
		case change := <-received:
			return change, nil
		case err := <-failed:
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ticker.C:
		}
	}
}

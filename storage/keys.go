package storage

import "fmt"

// The object key layout, in one place. A block is the folder <tenant>/<block-id>/;
// meta.json is written last, so a block without it is not visible.
const (
	MetaName  = "meta.json"
	DataName  = "data.parquet"
	IndexName = "index"
	// CompactedMetaName marks a block the compactor has replaced (Tempo's
	// name): readers stop listing it, and it is deleted after a grace period.
	CompactedMetaName = "meta.compacted.json"
	// TenantIndexName is the tenant index (Tempo's name): the tenant's block
	// list as one poller last listed it, so other readers need not list.
	TenantIndexName = "index.json.gz"
)

// TenantIndexKey is the key of a tenant's index. It sits beside the block
// folders, as an object, so listing the tenant's folders skips it.
func TenantIndexKey(tenant string) string { return tenant + "/" + TenantIndexName }

// BlockDir is the folder of one block, ending in "/".
func BlockDir(tenant, blockID string) string { return tenant + "/" + blockID + "/" }

// MetaKey is the key of a block's meta.json.
func MetaKey(tenant, blockID string) string { return BlockDir(tenant, blockID) + MetaName }

// CompactedMetaKey is the key of a block's compacted marker.
func CompactedMetaKey(tenant, blockID string) string {
	return BlockDir(tenant, blockID) + CompactedMetaName
}

// DataKey is the key of a block's parquet file.
func DataKey(tenant, blockID string) string { return BlockDir(tenant, blockID) + DataName }

// IndexKey is the key of a block's row-group index.
func IndexKey(tenant, blockID string) string { return BlockDir(tenant, blockID) + IndexName }

// BloomKey is the key of one shard of a block's bloom filter.
func BloomKey(tenant, blockID string, shard int) string {
	return fmt.Sprintf("%sbloom-%d", BlockDir(tenant, blockID), shard)
}

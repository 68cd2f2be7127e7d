"""Cloud storage sync: providers (S3, GCS, Azure Blob), import/export storages and the sync job."""

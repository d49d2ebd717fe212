"""Model stage: MobileNet V1/V2 description, Keras builder, datasets, training, loading."""
